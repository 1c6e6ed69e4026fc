"""posttrain's top layer: what stands on `curate`, `synth` and `train` together.

`posttrain.tinymodels` builds tiny offline models for tests, benchmarks and examples; nothing in `curate`,
`synth` or `train` imports it.
"""
