"""Whole pipelines as recipes: named stages, each a posttrain command, run in dependency order, resumably.

The library behind `posttrain run` and `posttrain plan`; a recipe is a YAML file (`recipes/` ships the Gemma,
Qwen2 and Llama 3 pipelines and a tiny variant of each):

>>> from posttrain.recipes import Recipe, plan_recipe, run_recipe
>>> recipe = Recipe.load("recipes/demo.yaml")  # doctest: +SKIP
>>> [p.why for p in plan_recipe(recipe, "runs/demo")]  # doctest: +SKIP
['new', 'after filter']
>>> run_recipe(recipe, "runs/demo").ran  # doctest: +SKIP
['filter', 'sft']

`posttrain.recipes.recipe` reads and checks a recipe, `commands` is the registry of the commands a stage may run,
`runner` runs the stages, `state` is what a run directory remembers (`DIR/recipe.json`, the keys that decide
what is skipped), `plan` estimates what each stage will spend.
"""

from posttrain.recipes.plan import StagePlan, plan_recipe
from posttrain.recipes.recipe import Recipe
from posttrain.recipes.runner import Outcome, StageFailed, run_recipe
from posttrain.recipes.source import RecipeError

__all__ = ["Outcome", "Recipe", "RecipeError", "StageFailed", "StagePlan", "plan_recipe", "run_recipe"]
