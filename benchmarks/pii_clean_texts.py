"""Clean chat text for the PII benchmark: nothing here is personal information, and nothing may be touched.

Written by hand, independently of `rules/pii.yaml`: recipes (capitalised ingredients and verbs), math and
statistics (slashes, equals signs, long numbers), history and literature (public figures, authors,
characters), code and ops (versions, ports, hashes, loopback and private addresses), science (constants,
coordinates, dates), sports and trivia (scores, ranges, ISBNs), and prose in Spanish, French, German,
Italian, Portuguese and Dutch. `make_pii_corpus.clean_rows()` turns them into conversation rows, together
with a seeded generator of number-heavy sentences.
"""

from __future__ import annotations

# (domain, user turn, assistant turn)
TEXTS: list[tuple[str, str, str]] = [
    # --- recipes ---------------------------------------------------------------------------------------
    (
        "recipe",
        "How do I make a simple banana bread?",
        "Ingredients:\nFlour: 250 g\nSugar: 150 g\nButter: 115 g, melted\nBananas: 3 ripe\nEggs: 2\n"
        "Baking soda: 1 tsp\n\nMethod:\n1. Preheat the oven to 175°C (350°F).\n2. Mash the bananas and "
        "stir in the butter.\n3. Whisk in the sugar and eggs.\n4. Fold in the flour and soda.\n5. Bake for "
        "60 to 65 minutes.",
    ),
    (
        "recipe",
        "Convert 2 1/2 cups of flour to grams.",
        "Convert using about 120 g per cup: 2 1/2 cups = 2.5 × 120 = 300 g. For bread flour use 127 g per "
        "cup, so 2.5 × 127 = 317.5 g.",
    ),
    (
        "recipe",
        "What's a good pancake recipe for 4 people?",
        "Whisk 200 g flour, 2 eggs, 300 ml milk and a pinch of salt. Rest the batter 30 minutes. Heat a pan "
        "over medium heat, brush with butter and pour 1/4 cup per pancake. Flip when bubbles form, after "
        "about 2 minutes. Serve with maple syrup or lemon and sugar.",
    ),
    (
        "recipe",
        "Give me a recipe for shakshuka.",
        "Shakshuka (serves 2)\n\nOlive Oil: 2 tbsp\nOnion: 1, diced\nRed Pepper: 1, sliced\nGarlic: 2 "
        "cloves\nCumin: 1 tsp\nPaprika: 1 tsp\nTomatoes: 400 g can\nEggs: 4\n\nSauté the onion and pepper "
        "for 6 minutes. Add the garlic and spices. Pour in the tomatoes and simmer 10 minutes. Make four "
        "wells, crack in the eggs, cover and cook 5 to 7 minutes. Garnish with parsley.",
    ),
    (
        "recipe",
        "How long should I roast a 2 kg chicken?",
        "Roast at 200°C for 20 minutes per 500 g plus 20 minutes: 4 × 20 + 20 = 100 minutes. Check that the "
        "thickest part of the thigh reads 74°C (165°F). Rest it 15 minutes before carving.",
    ),
    (
        "recipe",
        "Can you scale this cookie recipe by 1.5? It uses 225 g butter, 200 g sugar, 2 eggs, 280 g flour.",
        "Butter: 225 × 1.5 = 337.5 g\nSugar: 200 × 1.5 = 300 g\nEggs: 2 × 1.5 = 3\nFlour: 280 × 1.5 = 420 g"
        "\nCream the butter and sugar, beat in the eggs, then mix in the flour. Chill 30 minutes and bake "
        "at 180°C for 10-12 minutes.",
    ),
    (
        "recipe",
        "What is a roux?",
        "A roux is equal weights of fat and flour cooked together, the base of béchamel, velouté and "
        "espagnole, three of Escoffier's mother sauces. Cook a white roux 2-3 minutes, a blond one 5-6 and "
        "a brown one 10-15 for gumbo.",
    ),
    (
        "recipe",
        "Quick vinaigrette?",
        "Mix 3 parts oil to 1 part vinegar: 90 ml olive oil, 30 ml red wine vinegar, 1 tsp Dijon mustard, "
        "salt and pepper. Shake in a jar. Keeps 1 week in the fridge.",
    ),
    (
        "recipe",
        "How do I make risotto?",
        "Toast 300 g Arborio rice in butter with a chopped shallot. Deglaze with 125 ml white wine. Add 1.2 "
        "litres of hot stock one ladle at a time, stirring, for 18-20 minutes. Finish with Parmesan and a "
        "knob of butter (the mantecatura). Season to taste.",
    ),
    (
        "recipe",
        "Bread recipe with 70% hydration?",
        "For 70% hydration: Flour 500 g, Water 350 g (500 × 0.70), Salt 10 g (2%), Yeast 7 g.\nKnead 10 "
        "minutes. Prove 1 hour. Shape, prove 45 minutes. Score and bake at 230°C for 30-35 minutes with "
        "steam for the first 10.",
    ),
    (
        "recipe",
        "Grandma's apple crumble, please.",
        "Filling: 6 Bramley apples, 50 g sugar, 1 tsp cinnamon.\nTopping: 150 g flour, 100 g cold butter, "
        "75 g demerara sugar.\nRub the butter into the flour until it looks like breadcrumbs. Stir in the "
        "sugar. Spread over the apples. Bake at 190°C for 35-40 minutes until golden. Serve with custard.",
    ),
    (
        "recipe",
        "What temperature is medium-rare steak?",
        "Medium-rare is 55-57°C (130-135°F) in the centre. Sear 2-3 minutes per side for a 2.5 cm steak, "
        "then rest 5 minutes; carry-over cooking adds 2-3°C.",
    ),
    (
        "recipe",
        "How much rice to water for sushi rice?",
        "Use 1:1.1 by volume: 2 cups rice to 2.2 cups water. Rinse until clear, soak 30 minutes, cook, then "
        "fold in 60 ml rice vinegar, 2 tbsp sugar and 1 tsp salt while hot.",
    ),
    (
        "recipe",
        "Recipe for a classic Victoria sponge?",
        "Victoria Sponge\nButter 200 g\nCaster Sugar 200 g\nEggs 4\nSelf-raising Flour 200 g\nMilk 2 tbsp\n"
        "Beat, divide between two 20 cm tins, bake at 190°C for 20 minutes. Sandwich with raspberry jam and "
        "buttercream. Named after Queen Victoria, who liked a slice with her afternoon tea.",
    ),
    (
        "recipe",
        "Pesto from scratch?",
        "Blend 50 g basil, 30 g pine nuts (toasted), 1 garlic clove, 50 g Parmigiano Reggiano and 100 ml "
        "extra virgin olive oil. Pound it in a mortar if you want it the Genoese way.",
    ),
    (
        "recipe",
        "How do I temper chocolate?",
        "Melt dark chocolate to 45-50°C, cool it to 27-28°C while stirring, then rewarm to 31-32°C. Milk "
        "chocolate: 40-45, 26-27, 29-30°C. White: 40, 25-26, 28-29°C.",
    ),
    (
        "recipe",
        "Dal for a weeknight?",
        "Rinse 200 g red lentils. Simmer with 800 ml water, 1 tsp turmeric and salt for 20 minutes. Tadka: "
        "heat ghee, add cumin seeds, mustard seeds, 2 dried chillies, garlic and curry leaves; pour over. "
        "Squeeze in lime. Serve with basmati or roti.",
    ),
    (
        "recipe",
        "What's the ratio for a French omelette?",
        "Three eggs, 1 tbsp butter, pinch of salt. Beat well. Cook over medium heat, stirring with a fork "
        "for 20-30 seconds, then roll onto the plate. Jacques Pépin does it in under a minute.",
    ),
    (
        "recipe",
        "Oven is in Fahrenheit, recipe says 220 C.",
        "220°C × 9/5 + 32 = 428°F, so set it to 425°F. Gas mark 7 is the same heat.",
    ),
    (
        "recipe",
        "Guacamole?",
        "Mash 3 avocados with the juice of 1 lime. Stir in 1/2 red onion (diced), 1 jalapeño, a handful of "
        "coriander and 2 Roma tomatoes. Salt to taste. Serve right away or press cling film on the surface.",
    ),
    (
        "recipe",
        "Can I freeze lasagne?",
        "Yes. Cool it completely, wrap tightly and freeze up to 3 months. Thaw overnight in the fridge, then "
        "Bake covered at 180°C for 45 minutes and uncovered for 15.",
    ),
    (
        "recipe",
        "Tips for fluffy scones?",
        "Keep the butter cold, Handle the dough as little as possible, Cut straight down without twisting, "
        "and Brush only the tops with egg wash. Bake at 220°C for 12-15 minutes.",
    ),
    (
        "recipe",
        "Miso soup for one?",
        "Heat 300 ml dashi. Add 50 g cubed tofu and a pinch of wakame. Take off the heat, whisk in 1 tbsp "
        "white miso. Top with spring onion. Never Boil miso: it dulls the flavour.",
    ),
    (
        "recipe",
        "Lemon drizzle cake quantities for a 900 g loaf tin?",
        "Butter 175 g, Sugar 175 g, Eggs 3, Self-Raising Flour 175 g, Zest of 2 lemons. Drizzle: juice of "
        "1½ lemons and 85 g sugar. Bake 45-50 min at 180°C (160°C fan).",
    ),
    (
        "recipe",
        "How to poach an egg?",
        "Bring water to a gentle simmer, add a splash of vinegar, Stir to make a whirlpool and slide the "
        "egg in. Cook 3 minutes for a runny yolk. Lift out with a slotted spoon; Drain on paper.",
    ),
    # --- math and statistics -------------------------------------------------------------------------
    (
        "math",
        "Five runners finished in 31, 35, 33, 34 and 35 minutes. What's the mean?",
        "Add them: 31 + 35 + 33 + 34 + 35 = 168. Divide by 5: so the mean is 168 / 5 = 33.6 minutes.",
    ),
    (
        "math",
        "Solve 3x + 7 = 22.",
        "Subtract 7: 3x = 15. Divide by 3: x = 15 / 3 = 5. Check: 3 × 5 + 7 = 22.",
    ),
    (
        "math",
        "What is 1234567 × 89?",
        "1234567 × 89 = 1234567 × 90 − 1234567 = 111111030 − 1234567 = 109876463.",
    ),
    (
        "math",
        "Simplify 144/12 + 225/15.",
        "144/12 = 12 and 225/15 = 15, so the sum is 27.",
    ),
    (
        "math",
        "What's the standard deviation of 2, 4, 4, 4, 5, 5, 7, 9?",
        "Mean = 40 / 8 = 5. Squared deviations: 9, 1, 1, 1, 0, 0, 4, 16, sum 32. Population variance = "
        "32 / 8 = 4, so σ = 2. Sample variance = 32 / 7 ≈ 4.571, s ≈ 2.138.",
    ),
    (
        "math",
        "Compound interest on 10000 at 5% for 3 years?",
        "A = 10000 × (1 + 0.05)^3 = 10000 × 1.157625 = 11576.25. Interest earned: 1576.25.",
    ),
    (
        "math",
        "Is 7919 prime?",
        "Yes. √7919 ≈ 88.99, and no prime up to 89 divides it: 7919 / 7 = 1131.29, 7919 / 11 = 719.9, "
        "7919 / 13 = 609.15 and so on. It's the 1000th prime.",
    ),
    (
        "math",
        "Convert 0.375 to a fraction.",
        "0.375 = 375/1000 = 3/8.",
    ),
    (
        "math",
        "What is 2^32?",
        "2^32 = 4294967296, the number of IPv4 addresses and the range of an unsigned 32-bit integer "
        "(0 to 4294967295).",
    ),
    (
        "math",
        "A train travels 342 km in 3 h 48 min. Average speed?",
        "3 h 48 min = 3.8 h. Speed = 342 / 3.8 = 90 km/h.",
    ),
    (
        "math",
        "Find the determinant of [[4, 7], [2, 6]].",
        "det = 4 × 6 − 7 × 2 = 24 − 14 = 10. The inverse is (1/10) × [[6, −7], [−2, 4]].",
    ),
    (
        "math",
        "Percentage change from 2480 to 3100?",
        "(3100 − 2480) / 2480 × 100 = 620 / 2480 × 100 = 25%.",
    ),
    (
        "math",
        "Sum of the first 100 integers?",
        "Gauss's trick: 100 × 101 / 2 = 5050.",
    ),
    (
        "math",
        "What's the median of 12, 3, 45, 7, 19, 28?",
        "Sorted: 3, 7, 12, 19, 28, 45. Median = (12 + 19) / 2 = 15.5.",
    ),
    (
        "math",
        "Area of a circle with radius 7.5 cm?",
        "A = π r² = 3.14159 × 56.25 ≈ 176.71 cm².",
    ),
    (
        "math",
        "Probability of two sixes with two dice?",
        "1/6 × 1/6 = 1/36 ≈ 0.0278, about 2.78%.",
    ),
    (
        "math",
        "Compute 987654321 mod 97.",
        "987654321 = 97 × 10182003 + 30, so 987654321 mod 97 = 30.",
    ),
    (
        "math",
        "Regression output: slope 2.413, intercept -17.82, R² = 0.8731, n = 412. Interpret.",
        "Each extra unit of x adds about 2.41 to y; the model explains 87.3% of the variance across 412 "
        "observations. The intercept, -17.82, is the prediction at x = 0, which may be outside the data.",
    ),
    (
        "math",
        "What's 15% of 2340?",
        "0.15 × 2340 = 351.",
    ),
    (
        "math",
        "Divide 7 3/4 by 1 1/2.",
        "7 3/4 = 31/4 and 1 1/2 = 3/2. 31/4 ÷ 3/2 = 31/4 × 2/3 = 62/12 = 31/6 = 5 1/6.",
    ),
    (
        "math",
        "Convert 1011 0110 from binary.",
        "10110110₂ = 128 + 32 + 16 + 4 + 2 = 182, or 0xB6 in hex.",
    ),
    (
        "math",
        "Z-score for 1310 when mean is 1060 and sd 195?",
        "z = (1310 − 1060) / 195 = 250 / 195 ≈ 1.28, about the 90th percentile.",
    ),
    (
        "math",
        "Expected value of a bet: win 250 with p=0.04, lose 12 otherwise.",
        "EV = 0.04 × 250 − 0.96 × 12 = 10 − 11.52 = −1.52 per bet.",
    ),
    (
        "math",
        "How many seconds in a leap year?",
        "366 × 24 × 60 × 60 = 31622400 seconds.",
    ),
    (
        "math",
        "Solve the system x + y = 1200, 0.05x + 0.08y = 75.",
        "From the first, x = 1200 − y. Then 0.05(1200 − y) + 0.08y = 75 → 60 + 0.03y = 75 → y = 500, "
        "x = 700.",
    ),
    (
        "math",
        "Fibonacci numbers up to 1000?",
        "0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987.",
    ),
    (
        "math",
        "Confidence interval: mean 72.4, sd 8.1, n 64, 95%?",
        "SE = 8.1 / √64 = 1.0125. 72.4 ± 1.96 × 1.0125 = 72.4 ± 1.98, so (70.42, 74.38).",
    ),
    (
        "math",
        "Chi-square result: χ²(3) = 11.34, p = 0.010. Significant?",
        "At α = 0.05, yes: p = 0.010 < 0.05. With 3 degrees of freedom the critical value is 7.815.",
    ),
    # --- history, literature, public figures ----------------------------------------------------------
    (
        "history",
        "Who proposed the theory of evolution by natural selection?",
        "Charles Darwin and Alfred Russel Wallace, in a joint paper read to the Linnean Society on 1 July "
        "1858. Darwin's On the Origin of Species followed on 24 November 1859.",
    ),
    (
        "history",
        "Why is Magna Carta important?",
        "King John sealed it at Runnymede on 15 June 1215 under pressure from his barons. It limited royal "
        "power and, though Pope Innocent III annulled it within weeks, clauses 39 and 40 became "
        "foundations of due process.",
    ),
    (
        "history",
        "Summarise the French Revolution in three sentences.",
        "It began in 1789 with the Estates-General and the storming of the Bastille on 14 July. Louis XVI "
        "was executed in January 1793, and Robespierre's Terror followed in 1793-94. Napoleon Bonaparte "
        "seized power in the coup of 18 Brumaire (9 November 1799).",
    ),
    (
        "history",
        "Who was Ada Lovelace?",
        "Augusta Ada King, Countess of Lovelace (1815-1852), daughter of Lord Byron, wrote the first "
        "published algorithm for Charles Babbage's Analytical Engine in her 1843 notes.",
    ),
    (
        "history",
        "Tell me about the moon landing.",
        "Apollo 11 landed on 20 July 1969. Neil Armstrong and Buzz Aldrin walked on the surface while "
        "Michael Collins orbited in Columbia. Armstrong's first step came at 02:56 UTC on 21 July.",
    ),
    (
        "history",
        "What did Marie Curie discover?",
        "Marie Skłodowska-Curie and Pierre Curie discovered polonium and radium in 1898. She won the Nobel "
        "Prize in Physics in 1903 (with Pierre and Henri Becquerel) and in Chemistry in 1911.",
    ),
    (
        "history",
        "Who wrote Pride and Prejudice?",
        "Jane Austen, published 28 January 1813. Elizabeth Bennet and Mr Darcy are its leads; Mr Collins, "
        "Lady Catherine de Bourgh and Mr Wickham are among the best-known supporting characters.",
    ),
    (
        "history",
        "Explain the causes of World War I.",
        "Militarism, alliances, imperialism and nationalism, with the spark being the assassination of "
        "Archduke Franz Ferdinand by Gavrilo Princip in Sarajevo on 28 June 1914. The war lasted 1914-1918.",
    ),
    (
        "history",
        "Who was Nelson Mandela?",
        "Nelson Mandela (1918-2013) led the struggle against apartheid, spent 27 years in prison, mostly "
        "on Robben Island, and served as President of South Africa from 1994 to 1999. He shared the 1993 "
        "Nobel Peace Prize with F. W. de Klerk.",
    ),
    (
        "history",
        "What's the plot of Hamlet?",
        "Prince Hamlet learns from his father's ghost that his uncle Claudius murdered the king and married "
        "Queen Gertrude. Hamlet feigns madness; Polonius, Ophelia, Laertes, Gertrude, Claudius and Hamlet "
        "himself are dead by the end. Horatio survives to tell the story.",
    ),
    (
        "history",
        "Who painted the Mona Lisa?",
        "Leonardo da Vinci, from about 1503 to 1519. The sitter is usually identified as Lisa Gherardini, "
        "wife of Francesco del Giocondo. It hangs in the Louvre.",
    ),
    (
        "history",
        "Tell me about Cleopatra.",
        "Cleopatra VII Philopator ruled Egypt from 51 to 30 BC, allied with Julius Caesar and then Mark "
        "Antony, and died after Octavian's victory at Actium.",
    ),
    (
        "history",
        "Who was Abraham Lincoln?",
        "The 16th President of the United States (1861-1865). He led the Union through the Civil War, "
        "issued the Emancipation Proclamation on 1 January 1863 and was assassinated by John Wilkes Booth "
        "at Ford's Theatre on 14 April 1865.",
    ),
    (
        "history",
        "What did Galileo observe with his telescope?",
        "In 1610 Galileo Galilei saw four moons of Jupiter (Io, Europa, Ganymede, Callisto), the phases of "
        "Venus and craters on the Moon, published in Sidereus Nuncius.",
    ),
    (
        "history",
        "Who is Sherlock Holmes?",
        "Arthur Conan Doyle's detective, introduced in A Study in Scarlet (1887). He lives at 221B Baker "
        "Street with Dr John Watson; Professor Moriarty is his nemesis and Mrs Hudson his landlady.",
    ),
    (
        "history",
        "Summary of 1984 by George Orwell?",
        "Winston Smith works at the Ministry of Truth in Airstrip One, rewriting history for the Party led "
        "by Big Brother. He falls for Julia, trusts O'Brien, and is broken in Room 101.",
    ),
    (
        "history",
        "Who were the Wright brothers?",
        "Wilbur and Orville Wright made the first controlled, powered flight at Kitty Hawk, North Carolina "
        "on 17 December 1903: 12 seconds and 36.5 m (120 ft).",
    ),
    (
        "history",
        "Give me key facts about Queen Elizabeth I.",
        "Elizabeth I reigned 1558-1603, the last Tudor monarch. Her reign saw the defeat of the Spanish "
        "Armada in 1588 and the plays of William Shakespeare and Christopher Marlowe.",
    ),
    (
        "history",
        "What did Isaac Newton contribute?",
        "Sir Isaac Newton (1643-1727) published the Principia in 1687: the three laws of motion and "
        "universal gravitation. He also developed calculus, independently of Gottfried Wilhelm Leibniz.",
    ),
    (
        "history",
        "Who was Genghis Khan?",
        "Temüjin, proclaimed Genghis Khan in 1206, founded the Mongol Empire. His grandson Kublai Khan "
        "founded the Yuan dynasty in China in 1271.",
    ),
    (
        "history",
        "Describe Don Quixote.",
        "Miguel de Cervantes' novel (1605 and 1615). Alonso Quijano renames himself Don Quixote de la "
        "Mancha and sets out with Sancho Panza on his horse Rocinante to serve the imagined Dulcinea del "
        "Toboso.",
    ),
    (
        "history",
        "Who was Martin Luther King Jr.?",
        "A Baptist minister and civil rights leader. He led the Montgomery bus boycott in 1955-56 and gave "
        "the 'I Have a Dream' speech on 28 August 1963; he won the Nobel Peace Prize in 1964 and was killed "
        "in Memphis on 4 April 1968.",
    ),
    (
        "history",
        "Characters in Harry Potter?",
        "Harry Potter, Hermione Granger and Ron Weasley, taught by Albus Dumbledore, Severus Snape and "
        "Minerva McGonagall, against Lord Voldemort. J. K. Rowling published the first book in 1997.",
    ),
    (
        "history",
        "What happened at the Battle of Hastings?",
        "On 14 October 1066 William, Duke of Normandy, defeated King Harold II, who died on the field. "
        "William was crowned on Christmas Day 1066.",
    ),
    (
        "history",
        "Who discovered penicillin?",
        "Alexander Fleming noticed in September 1928 that Penicillium mould killed Staphylococcus. Howard "
        "Florey and Ernst Chain turned it into a drug around 1940-41; the three shared the 1945 Nobel Prize.",
    ),
    (
        "history",
        "Who composed the Ninth Symphony with Ode to Joy?",
        "Ludwig van Beethoven, premiered in Vienna on 7 May 1824. The text is Friedrich Schiller's poem.",
    ),
    (
        "history",
        "What is The Great Gatsby about?",
        "F. Scott Fitzgerald's 1925 novel: Nick Carraway narrates Jay Gatsby's pursuit of Daisy Buchanan "
        "across the bay in West Egg, Long Island.",
    ),
    (
        "history",
        "Who was Mahatma Gandhi?",
        "Mohandas Karamchand Gandhi (1869-1948) led India's independence movement with nonviolent "
        "resistance, including the Salt March of March-April 1930. He was assassinated by Nathuram Godse "
        "on 30 January 1948.",
    ),
    (
        "history",
        "When did the Berlin Wall fall?",
        "On the night of 9 November 1989, after Günter Schabowski's confused press conference. Germany "
        "reunified on 3 October 1990 under Chancellor Helmut Kohl.",
    ),
    (
        "history",
        "Who was Frida Kahlo?",
        "A Mexican painter (1907-1954) known for self-portraits; she married Diego Rivera and lived in La "
        "Casa Azul in Coyoacán.",
    ),
    (
        "history",
        "Who wrote War and Peace?",
        "Leo Tolstoy, serialised 1865-1867 and published in full in 1869. Pierre Bezukhov, Prince Andrei "
        "Bolkonsky and Natasha Rostova are its central characters.",
    ),
    (
        "history",
        "What did Alan Turing do?",
        "Alan Turing defined the Turing machine in 1936, led Hut 8 at Bletchley Park breaking Enigma, and "
        "proposed the imitation game in 1950. He received a posthumous royal pardon in 2013.",
    ),
    (
        "history",
        "Tell me about Joan of Arc.",
        "Jeanne d'Arc lifted the siege of Orléans in 1429, saw Charles VII crowned at Reims, and was burned "
        "at Rouen on 30 May 1431. She was canonised in 1920.",
    ),
    (
        "history",
        "Famous quotes by Winston Churchill?",
        "'We shall fight on the beaches' (4 June 1940) and 'Never was so much owed by so many to so few' "
        "(20 August 1940). Churchill was Prime Minister 1940-45 and 1951-55.",
    ),
    (
        "history",
        "Who is Atticus Finch?",
        "The lawyer father of Scout and Jem in Harper Lee's To Kill a Mockingbird (1960); he defends Tom "
        "Robinson in Maycomb, Alabama. Boo Radley is the neighbour the children fear.",
    ),
    (
        "history",
        "Who founded Microsoft and Apple?",
        "Bill Gates and Paul Allen founded Microsoft on 4 April 1975; Steve Jobs, Steve Wozniak and Ronald "
        "Wayne founded Apple on 1 April 1976.",
    ),
    # --- code and ops --------------------------------------------------------------------------------
    (
        "code",
        "How do I pin a package version in pip?",
        "Use `pip install requests==2.31.0`, or a range like `numpy>=1.26,<2.0`. In requirements.txt write "
        "one per line, e.g. `torch==2.3.1` and `transformers==4.44.2`.",
    ),
    (
        "code",
        "My Flask app only listens on localhost.",
        "Run it with `flask run --host=0.0.0.0 --port=5000`. It was bound to 127.0.0.1:5000. From another "
        "machine on your LAN use the host's address, e.g. http://192.168.1.23:5000.",
    ),
    (
        "code",
        "How do I clone a repo over SSH?",
        "`git clone git@github.com:pallets/flask.git`. Make sure your key is added with `ssh-add "
        "~/.ssh/id_ed25519` and test with `ssh -T git@github.com`.",
    ),
    (
        "code",
        "Write a Python function for the nth Fibonacci number.",
        "```python\ndef fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b"
        "\n    return a\n\nassert fib(10) == 55\nassert fib(50) == 12586269025\n```",
    ),
    (
        "code",
        "Docker compose for Postgres?",
        '```yaml\nservices:\n  db:\n    image: postgres:16.2\n    ports:\n      - "5432:5432"\n    '
        "environment:\n      POSTGRES_PASSWORD: example\n```\nConnect with `psql -h localhost -p 5432 -U "
        "postgres`.",
    ),
    (
        "code",
        "What does chmod 755 mean?",
        "Owner rwx (7 = 4 + 2 + 1), group r-x (5 = 4 + 1), others r-x (5). `chmod 644` is rw-r--r--.",
    ),
    (
        "code",
        "SQL to get monthly revenue?",
        "```sql\nSELECT date_trunc('month', created_at) AS month, SUM(amount) AS revenue\nFROM orders\nWHERE "
        "created_at >= '2024-01-01' AND created_at < '2025-01-01'\nGROUP BY 1\nORDER BY 1;\n```",
    ),
    (
        "code",
        "Explain this log line: 2024-05-14T09:32:11.482Z INFO worker-3 processed 15234 jobs in 812.4 s",
        "At 09:32:11.482 UTC on 14 May 2024, worker 3 reported 15234 jobs in 812.4 seconds, about "
        "15234 / 812.4 ≈ 18.75 jobs per second.",
    ),
    (
        "code",
        "Why does my regex \\d{3}-\\d{3}-\\d{4} match too much?",
        "Anchor it: `^\\d{3}-\\d{3}-\\d{4}$`, or use word boundaries `\\b...\\b`. Without them it matches "
        "inside longer digit runs.",
    ),
    (
        "code",
        "nginx config to proxy to port 8080?",
        "```nginx\nserver {\n    listen 80;\n    server_name example.com;\n    location / {\n        "
        "proxy_pass http://127.0.0.1:8080;\n        proxy_set_header Host $host;\n    }\n}\n```",
    ),
    (
        "code",
        "How do I compare versions in Python?",
        "Use packaging: `Version('1.10.0') > Version('1.9.3')` is True, while comparing the strings "
        "'1.10.0' > '1.9.3' is False. Pre-releases sort before: 2.0.0rc1 < 2.0.0.",
    ),
    (
        "code",
        "Kubernetes pod keeps restarting, exit code 137.",
        "137 = 128 + 9: the container got SIGKILL, usually the OOM killer. Check `kubectl describe pod` for "
        "OOMKilled and raise the memory limit, e.g. from 512Mi to 1Gi.",
    ),
    (
        "code",
        "What's the difference between TCP ports 443 and 8443?",
        "443 is the standard HTTPS port; 8443 is a common alternative for a second HTTPS service or an "
        "admin console, e.g. https://localhost:8443/.",
    ),
    (
        "code",
        "Git says: HEAD detached at 3f9c2a1.",
        "You checked out commit 3f9c2a1 directly. Create a branch to keep work: `git switch -c fix-1024`. "
        "Then `git log --oneline -5` shows where you are.",
    ),
    (
        "code",
        "JavaScript: sort numbers correctly?",
        "```js\nconst xs = [100, 25, 3, 1000];\nxs.sort((a, b) => a - b); // [3, 25, 100, 1000]\n```\nThe "
        "default sort compares strings, giving [100, 1000, 25, 3].",
    ),
    (
        "code",
        "How do I set a static IP on Ubuntu?",
        "Edit /etc/netplan/01-netcfg.yaml:\n```yaml\nnetwork:\n  version: 2\n  ethernets:\n    eth0:\n      "
        "addresses: [192.168.0.50/24]\n      routes:\n        - to: default\n          via: 192.168.0.1\n      "
        "nameservers:\n        addresses: [1.1.1.1, 8.8.8.8]\n```\nthen `sudo netplan apply`.",
    ),
    (
        "code",
        "Rust: why does this overflow? let x: u8 = 200 + 100;",
        "u8 holds 0..=255 and 200 + 100 = 300. In debug builds it panics; use `200u16 + 100` or "
        "`200u8.checked_add(100)`, which returns None.",
    ),
    (
        "code",
        "What is CVE-2021-44228?",
        "Log4Shell, a remote code execution flaw in Apache Log4j 2 (2.0-beta9 to 2.14.1), scored 10.0 on "
        "CVSS. Upgrade to 2.17.1 or later.",
    ),
    (
        "code",
        "C: printf a 64-bit integer?",
        '```c\n#include <inttypes.h>\nint64_t big = 9223372036854775807;\nprintf("%" PRId64 "\\n", big);\n'
        "```\nThat value is INT64_MAX = 2^63 − 1.",
    ),
    (
        "code",
        "How do I generate a UUID in Python?",
        "`import uuid; uuid.uuid4()` gives something like 1b4e28ba-2fa1-11d2-883f-0016d3cca427 (random "
        "each time).",
    ),
    (
        "code",
        "Cron expression for every weekday at 6:30?",
        "`30 6 * * 1-5`. Fields: minute hour day-of-month month day-of-week.",
    ),
    (
        "code",
        "Redis default port and how to ping?",
        "6379. `redis-cli -h 127.0.0.1 -p 6379 ping` answers PONG.",
    ),
    (
        "code",
        "Go: read a file line by line.",
        '```go\nf, err := os.Open("data.txt")\nif err != nil { log.Fatal(err) }\ndefer f.Close()\nsc := '
        "bufio.NewScanner(f)\nfor sc.Scan() { fmt.Println(sc.Text()) }\n```",
    ),
    (
        "code",
        "IPv6 loopback and link-local?",
        "Loopback is ::1; link-local addresses are in fe80::/10, e.g. fe80::1ff:fe23:4567:890a%eth0. "
        "Documentation examples use 2001:db8::/32.",
    ),
    (
        "code",
        "What's semantic versioning?",
        "MAJOR.MINOR.PATCH: 3.12.4 → 3.13.0 adds features, 4.0.0 breaks compatibility. Pre-release: "
        "1.0.0-alpha.1 < 1.0.0-beta.2 < 1.0.0.",
    ),
    (
        "code",
        "Pandas: group and average.",
        "```python\ndf.groupby('region')['sales'].mean().round(2)\n# north 10234.57\n# south  8812.04\n```",
    ),
    (
        "code",
        "Explain HTTP status 429.",
        "Too Many Requests: the client hit a rate limit. Respect the Retry-After header, e.g. Retry-After: "
        "120, and back off exponentially: 1, 2, 4, 8, 16 seconds.",
    ),
    (
        "code",
        "What's my subnet mask for /26?",
        "/26 = 255.255.255.192: 64 addresses, 62 usable hosts. 10.0.0.0/26 spans 10.0.0.0-10.0.0.63.",
    ),
    (
        "code",
        "Write a bash loop renaming files 001.jpg to 100.jpg.",
        '```bash\nfor i in $(seq -w 1 100); do\n  mv "IMG_$i.jpg" "$i.jpg"\ndone\n```',
    ),
    (
        "code",
        "How do I check which process uses port 3000?",
        "`lsof -i :3000` or `ss -ltnp | grep 3000`; then `kill 48213` with the PID it shows.",
    ),
    (
        "code",
        "Java: parse an ISO date.",
        '`LocalDate d = LocalDate.parse("2023-11-05");` and `Instant.parse("2023-11-05T08:15:30.00Z")` '
        "for a timestamp.",
    ),
    (
        "code",
        "What does `git@github.com: Permission denied (publickey)` mean?",
        "GitHub didn't accept any of your SSH keys. Add the public key in Settings → SSH keys and check "
        "with `ssh -vT git@github.com`.",
    ),
    # --- science -------------------------------------------------------------------------------------
    (
        "science",
        "What's Avogadro's number?",
        "6.02214076 × 10^23 per mole, exact since the 2019 SI redefinition.",
    ),
    (
        "science",
        "Speed of light in m/s?",
        "299 792 458 m/s exactly, about 1.079 × 10^9 km/h.",
    ),
    (
        "science",
        "Where is Mount Everest exactly?",
        "At 27.9881° N, 86.9250° E, on the Nepal-China border; its height is 8848.86 m (2020 survey).",
    ),
    (
        "science",
        "Coordinates of the Eiffel Tower?",
        "48.8584° N, 2.2945° E. In decimal form for a map: 48.8584, 2.2945.",
    ),
    (
        "science",
        "What is the Planck constant?",
        "h = 6.62607015 × 10^-34 J·s; ħ = h / 2π ≈ 1.054571817 × 10^-34 J·s.",
    ),
    (
        "science",
        "How far is the Moon?",
        "On average 384 400 km; it ranges from about 363 300 km at perigee to 405 500 km at apogee.",
    ),
    (
        "science",
        "Half-life of carbon-14?",
        "5730 ± 40 years. After 11460 years a quarter remains: N = N₀ × (1/2)^(t / 5730).",
    ),
    (
        "science",
        "What's the molar mass of glucose?",
        "C6H12O6: 6 × 12.011 + 12 × 1.008 + 6 × 15.999 = 180.156 g/mol.",
    ),
    (
        "science",
        "pH of 0.001 M HCl?",
        "[H+] = 1 × 10^-3 M, so pH = −log10(0.001) = 3.",
    ),
    (
        "science",
        "Who discovered DNA's structure?",
        "James Watson and Francis Crick published the double helix on 25 April 1953 in Nature, drawing on "
        "Rosalind Franklin's Photo 51 and Maurice Wilkins' work.",
    ),
    (
        "science",
        "Boiling point of water at altitude 3000 m?",
        "About 90°C: pressure is roughly 70 kPa instead of 101.325 kPa.",
    ),
    (
        "science",
        "Explain E = mc².",
        "Energy equals mass times the speed of light squared: 1 g of mass is 0.001 × (2.998 × 10^8)² ≈ "
        "8.99 × 10^13 J, about 21.5 kilotons of TNT.",
    ),
    (
        "science",
        "What is the Hubble constant?",
        "About 67.4 km/s/Mpc from Planck 2018 and 73.0 ± 1.0 from SH0ES, the 'Hubble tension'.",
    ),
    (
        "science",
        "Gravitational acceleration on Mars?",
        "3.721 m/s², about 0.38 g. A 70 kg person weighs 70 × 3.721 ≈ 260 N there.",
    ),
    (
        "science",
        "What's the Richter magnitude of the 2011 Tohoku earthquake?",
        "Moment magnitude 9.0-9.1, on 11 March 2011 at 14:46 JST, epicentre about 38.297° N, 142.373° E.",
    ),
    (
        "science",
        "Atomic numbers of the noble gases?",
        "He 2, Ne 10, Ar 18, Kr 36, Xe 54, Rn 86, Og 118.",
    ),
    (
        "science",
        "How many base pairs in the human genome?",
        "About 3.1 billion (3 100 000 000) per haploid set, with roughly 19 000-20 000 protein-coding genes.",
    ),
    (
        "science",
        "Convert 5 parsecs to light years.",
        "1 pc = 3.2616 ly, so 5 pc = 16.308 ly, about 1.543 × 10^17 m.",
    ),
    (
        "science",
        "Who was Rosalind Franklin?",
        "An English chemist (1920-1958) whose X-ray diffraction images of DNA at King's College London were "
        "key to the double helix model.",
    ),
    (
        "science",
        "Ideal gas volume of 2 mol at STP?",
        "V = nRT / P = 2 × 8.314 × 273.15 / 100000 = 0.04542 m³, about 45.4 L.",
    ),
    (
        "science",
        "When is the next total solar eclipse in Europe?",
        "12 August 2026, crossing Greenland, Iceland and Spain; totality lasts up to 2 min 18 s.",
    ),
    (
        "science",
        "Density of gold?",
        "19.32 g/cm³, so a 1 kg bar is 1000 / 19.32 ≈ 51.8 cm³.",
    ),
    # --- sports, trivia, references -------------------------------------------------------------------
    (
        "trivia",
        "Who won the 2014 World Cup final?",
        "Germany beat Argentina 1-0 after extra time on 13 July 2014; Mario Götze scored in the 113th "
        "minute.",
    ),
    (
        "trivia",
        "What was the score of Super Bowl LI?",
        "New England 34, Atlanta 28 in overtime, after trailing 28-3. Tom Brady was MVP.",
    ),
    (
        "trivia",
        "ISBN of the Penguin Classics Odyssey?",
        "Robert Fagles' translation is ISBN 978-0-14-026886-7; always check the copyright page of your "
        "edition.",
    ),
    (
        "trivia",
        "Cite Knuth's TAOCP volume 1.",
        "Knuth, D. E. (1997). The Art of Computer Programming, Vol. 1: Fundamental Algorithms (3rd ed.). "
        "Addison-Wesley. ISBN 0-201-89683-4, pp. 232-465.",
    ),
    (
        "trivia",
        "Usain Bolt's 100 m record?",
        "9.58 s in Berlin on 16 August 2009; his 200 m record is 19.19 s from the same championships.",
    ),
    (
        "trivia",
        "Tennis: who won Wimbledon 2019 men's final?",
        "Novak Djokovic beat Roger Federer 7-6(5), 1-6, 7-6(4), 4-6, 13-12(3), the longest final at 4 h "
        "57 min.",
    ),
    (
        "trivia",
        "How tall is the Burj Khalifa?",
        "828 m (2717 ft), 163 floors, opened 4 January 2010 in Dubai.",
    ),
    (
        "trivia",
        "Population of Tokyo?",
        "The metropolis had about 14 094 034 residents in 2023; Greater Tokyo about 37 million.",
    ),
    (
        "trivia",
        "Cricket: highest Test score?",
        "Brian Lara's 400 not out against England in Antigua, April 2004.",
    ),
    (
        "trivia",
        "What's the DOI of the AlphaFold paper?",
        "Jumper et al. (2021), Nature 596, 583-589, doi:10.1038/s41586-021-03819-2.",
    ),
    (
        "trivia",
        "Marathon world record?",
        "Kelvin Kiptum ran 2:00:35 in Chicago on 8 October 2023.",
    ),
    (
        "trivia",
        "Chess: what happened in Deep Blue vs Kasparov 1997?",
        "Deep Blue won the rematch 3½-2½ in New York, 3-11 May 1997.",
    ),
    (
        "trivia",
        "How long is the Great Wall?",
        "The 2012 survey measured 21 196.18 km including all branches.",
    ),
    (
        "trivia",
        "Formula 1: Lewis Hamilton's wins?",
        "105 Grand Prix wins and 7 titles (2008, 2014-15, 2017-20), tied with Michael Schumacher.",
    ),
    (
        "trivia",
        "How old is the universe?",
        "13.787 ± 0.020 billion years (Planck 2018).",
    ),
    (
        "trivia",
        "Basketball: Wilt Chamberlain's 100 points game?",
        "2 March 1962, Philadelphia Warriors 169, New York Knicks 147, in Hershey, Pennsylvania.",
    ),
    # --- other languages -------------------------------------------------------------------------------
    (
        "es",
        "¿Cómo se hace una tortilla de patatas?",
        "Pela y corta 1 kg de patatas y 1 cebolla. Fríelas a fuego lento en aceite de oliva unos 20 "
        "minutos. Bate 6 huevos con sal, mezcla con las patatas escurridas y cuaja en la sartén 3-4 minutos "
        "por cada lado. Dale la vuelta con un plato.",
    ),
    (
        "es",
        "Resume la historia de Cristóbal Colón.",
        "Cristóbal Colón zarpó de Palos de la Frontera el 3 de agosto de 1492 con la Pinta, la Niña y la "
        "Santa María, financiado por Isabel I de Castilla y Fernando II de Aragón. Llegó a Guanahaní el 12 "
        "de octubre.",
    ),
    (
        "es",
        "¿Cuál es la capital de Argentina y cuántos habitantes tiene?",
        "Buenos Aires. La Ciudad Autónoma tiene unos 3 120 612 habitantes (censo 2022) y el Gran Buenos "
        "Aires más de 15 millones.",
    ),
    (
        "es",
        "Explícame la fotosíntesis.",
        "Las plantas convierten la luz en energía química: 6 CO2 + 6 H2O → C6H12O6 + 6 O2. Ocurre en los "
        "cloroplastos, gracias a la clorofila.",
    ),
    (
        "es",
        "¿Quién escribió Cien años de soledad?",
        "Gabriel García Márquez, publicada en 1967. Cuenta la historia de la familia Buendía en Macondo, "
        "desde José Arcadio Buendía y Úrsula Iguarán.",
    ),
    (
        "es",
        "Receta de gazpacho andaluz",
        "Tritura 1 kg de tomates maduros, 1 pepino, 1 pimiento verde, 1 diente de ajo, 50 ml de aceite, 2 "
        "cucharadas de vinagre de Jerez y sal. Cuela, Enfría al menos 2 horas y Sirve muy frío.",
    ),
    (
        "es",
        "Calcula la media de 12, 15 y 18.",
        "La suma es 12 + 15 + 18 = 45, y la media es 45 / 3 = 15.",
    ),
    (
        "es",
        "Dime algo sobre Frida y Diego.",
        "Frida Kahlo y Diego Rivera se casaron en 1929 en Coyoacán. Su casa, La Casa Azul, es hoy el Museo "
        "Frida Kahlo, en la calle Londres 247.",
    ),
    (
        "es",
        "¿Qué pasó en la Guerra Civil Española?",
        "Comenzó el 17-18 de julio de 1936 con el golpe contra la Segunda República y terminó el 1 de abril "
        "de 1939 con la victoria del bando de Francisco Franco.",
    ),
    (
        "es",
        "¿Cómo preparo un café de olla?",
        "Hierve 1 litro de agua con 1 rama de canela y 100 g de piloncillo. Añade 4 cucharadas de café "
        "molido, apaga el fuego y deja reposar 5 minutos. Cuela y sirve en jarritos de barro.",
    ),
    (
        "fr",
        "Comment faire une pâte à crêpes ?",
        "Mélangez 250 g de farine, 4 œufs, 50 cl de lait, 1 pincée de sel et 50 g de beurre fondu. Laissez "
        "reposer 1 heure. Faites cuire dans une poêle chaude, 1 minute de chaque côté.",
    ),
    (
        "fr",
        "Qui était Victor Hugo ?",
        "Victor Hugo (1802-1885), auteur des Misérables et de Notre-Dame de Paris, où l'on rencontre Jean "
        "Valjean, Javert, Cosette, Quasimodo et Esmeralda. Il a vécu en exil à Guernesey de 1855 à 1870.",
    ),
    (
        "fr",
        "Explique la Révolution de 1789.",
        "Les États généraux s'ouvrent le 5 mai 1789 ; la Bastille tombe le 14 juillet. La Déclaration des "
        "droits de l'homme est adoptée le 26 août. Louis XVI est guillotiné le 21 janvier 1793.",
    ),
    (
        "fr",
        "Résous 2x - 4 = 10.",
        "On ajoute 4 : 2x = 14, donc x = 14 / 2 = 7.",
    ),
    (
        "fr",
        "Recette de la ratatouille ?",
        "Coupez 2 aubergines, 3 courgettes, 2 poivrons, 1 oignon et 4 tomates. Faites revenir chaque "
        "légume séparément dans l'huile d'olive, puis Mélangez avec ail et herbes de Provence. Laissez "
        "mijoter 40 minutes à feu doux.",
    ),
    (
        "fr",
        "Où se trouve le Mont Blanc ?",
        "À la frontière franco-italienne, à 45,8326° N, 6,8652° E ; il culmine à 4805,59 m (mesure de 2021).",
    ),
    (
        "fr",
        "Parle-moi du Petit Prince.",
        "Antoine de Saint-Exupéry l'a publié en 1943. Le petit prince quitte l'astéroïde B 612, rencontre "
        "le renard et l'aviateur dans le désert : « On ne voit bien qu'avec le cœur. »",
    ),
    (
        "fr",
        "Combien font 15 % de 80 euros ?",
        "0,15 × 80 = 12 euros, donc le prix remisé est de 68 euros.",
    ),
    (
        "fr",
        "Qui a peint Les Nymphéas ?",
        "Claude Monet, dans son jardin de Giverny, entre 1897 et 1926. Les grands panneaux sont au musée "
        "de l'Orangerie depuis 1927.",
    ),
    (
        "de",
        "Wie backe ich einen Apfelstrudel?",
        "Teig: 250 g Mehl, 1 Ei, 125 ml lauwarmes Wasser, 1 Prise Salz. Füllung: 1 kg Äpfel, 80 g Zucker, "
        "Zimt, Rosinen und Semmelbrösel. Teig hauchdünn ausziehen, füllen, rollen und bei 190 °C etwa 40 "
        "Minuten backen.",
    ),
    (
        "de",
        "Wer war Johann Wolfgang von Goethe?",
        "Goethe (1749-1832) schrieb Faust, Die Leiden des jungen Werthers und Wilhelm Meisters Lehrjahre. "
        "Mit Friedrich Schiller prägte er die Weimarer Klassik.",
    ),
    (
        "de",
        "Erkläre den Satz des Pythagoras.",
        "In einem rechtwinkligen Dreieck gilt a² + b² = c². Beispiel: 3² + 4² = 9 + 16 = 25 = 5².",
    ),
    (
        "de",
        "Was geschah am 9. November 1989?",
        "Die Berliner Mauer fiel. Nach der Pressekonferenz von Günter Schabowski öffneten die Grenzposten "
        "an der Bornholmer Straße gegen 23:30 Uhr.",
    ),
    (
        "de",
        "Wie viel sind 3/4 von 2,5 Litern?",
        "3/4 × 2,5 = 1,875 Liter.",
    ),
    (
        "de",
        "Rezept für Kartoffelsalat?",
        "1 kg festkochende Kartoffeln kochen, pellen und in Scheiben schneiden. Mit 250 ml warmer "
        "Brühe, 3 EL Essig, 1 Zwiebel, Salz und Pfeffer mischen. 1 Stunde ziehen lassen, Öl und "
        "Schnittlauch unterheben.",
    ),
    (
        "de",
        "Wer komponierte die Zauberflöte?",
        "Wolfgang Amadeus Mozart; Uraufführung am 30. September 1791 in Wien. Papageno, Tamino, Pamina und "
        "die Königin der Nacht sind die bekanntesten Figuren.",
    ),
    (
        "it",
        "Come si fa la carbonara?",
        "Cuoci 320 g di spaghetti. Rosola 150 g di guanciale. Sbatti 4 tuorli con 50 g di pecorino romano "
        "e pepe nero. Scola la pasta, uniscila al guanciale fuori dal fuoco e Manteca con le uova e un po' "
        "d'acqua di cottura.",
    ),
    (
        "it",
        "Chi era Dante Alighieri?",
        "Dante (1265-1321) scrisse la Divina Commedia: Inferno, Purgatorio e Paradiso. Virgilio lo guida "
        "all'inizio, Beatrice nel Paradiso.",
    ),
    (
        "it",
        "Quando è stata fondata Roma?",
        "Secondo la tradizione il 21 aprile 753 a.C., da Romolo. L'Impero romano d'Occidente cadde nel 476 "
        "d.C. con la deposizione di Romolo Augustolo.",
    ),
    (
        "pt",
        "Como fazer brigadeiro?",
        "Misture 1 lata de leite condensado (395 g), 1 colher de sopa de manteiga e 3 colheres de sopa de "
        "cacau. Cozinhe em fogo baixo por 10-15 minutos, mexendo sempre. Deixe esfriar, Enrole e passe no "
        "granulado.",
    ),
    (
        "pt",
        "Quem foi Pedro Álvares Cabral?",
        "Navegador português que chegou ao Brasil em 22 de abril de 1500, a caminho da Índia, a serviço de "
        "D. Manuel I.",
    ),
    (
        "pt",
        "Quanto é 25% de 360?",
        "0,25 × 360 = 90.",
    ),
    (
        "nl",
        "Hoe maak ik stamppot boerenkool?",
        "Kook 1 kg kruimige aardappelen met 500 g boerenkool gaar in 20 minuten. Stamp fijn met een klont "
        "boter en een scheut warme melk. Serveer met rookworst en jus.",
    ),
    (
        "nl",
        "Wie was Vincent van Gogh?",
        "Een Nederlandse schilder (1853-1890). Hij maakte De Aardappeleters in Nuenen en De Sterrennacht in "
        "Saint-Rémy; zijn broer Theo steunde hem.",
    ),
    # --- everyday writing, no personal data ----------------------------------------------------------
    (
        "writing",
        "Write a short product description for a water bottle.",
        "Stay Hydrated, Anywhere. Our 750 ml stainless-steel bottle keeps drinks cold for 24 hours and hot "
        "for 12. BPA-free, Leak-proof, Dishwasher-safe. Available in Ocean Blue, Forest Green and Matte "
        "Black.",
    ),
    (
        "writing",
        "Give me a haiku about autumn.",
        "Crimson maple leaves\nDrift across the silent pond\nSummer's last goodbye",
    ),
    (
        "writing",
        "Draft an out-of-office reply.",
        "Thank you for your message. I am out of the office from 12 to 16 August with limited access to "
        "e-mail. I will reply when I return on Monday 19 August. For urgent matters, please contact the "
        "support team through the help desk.",
    ),
    (
        "writing",
        "List 5 tips for a job interview.",
        "Research the company. Prepare STAR stories. Dress one step above the dress code. Bring 2-3 "
        "questions. Send a thank-you note within 24 hours.",
    ),
    (
        "writing",
        "Agenda for a 45-minute team meeting.",
        "09:00-09:05 Welcome\n09:05-09:20 Q3 results (Finance)\n09:20-09:35 Roadmap 2025-26\n09:35-09:45 "
        "Open questions\nRoom 4.12, second floor.",
    ),
    (
        "writing",
        "Summarize the plot of Star Wars: A New Hope.",
        "Luke Skywalker, Han Solo, Princess Leia, Obi-Wan Kenobi, Chewbacca, R2-D2 and C-3PO fight Darth "
        "Vader and Grand Moff Tarkin; Luke destroys the Death Star on the Yavin 4 mission.",
    ),
    (
        "writing",
        "Suggest names for a bakery.",
        "Rise & Shine, The Rolling Pin, Crumb and Crust, Golden Loaf, Flour Power, Knead to Know.",
    ),
    (
        "writing",
        "Write a limerick about a cat.",
        "A cat with a taste for the cream\nWould plot and would patiently scheme;\nShe'd wait by the door,"
        "\nThen leap from the floor,\nAnd vanish like steam in a dream.",
    ),
    (
        "writing",
        "Explain the rules of chess castling.",
        "Neither the king nor that rook has moved, no pieces between them, the king is not in check and "
        "does not cross an attacked square. Kingside: King e1→g1, Rook h1→f1 (O-O).",
    ),
    (
        "writing",
        "Translate 'good morning' into 5 languages.",
        "Spanish: Buenos días. French: Bonjour. German: Guten Morgen. Italian: Buongiorno. Japanese: "
        "Ohayō gozaimasu.",
    ),
    (
        "writing",
        "What are the planets in order?",
        "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune. Pluto was reclassified as a dwarf "
        "planet on 24 August 2006.",
    ),
    (
        "writing",
        "Book recommendations like Dune?",
        "Hyperion by Dan Simmons, The Left Hand of Darkness by Ursula K. Le Guin, Foundation by Isaac "
        "Asimov, and Children of Time by Adrian Tchaikovsky.",
    ),
    (
        "writing",
        "How do I address a letter to a judge?",
        "Write 'The Honorable' and the judge's full name on the envelope, and open with 'Dear Judge' and "
        "the surname. Keep it formal and brief.",
    ),
    (
        "writing",
        "Create a workout plan for beginners.",
        "Monday: Squats 3×10, Push-ups 3×8, Plank 3×30 s. Wednesday: Lunges 3×10, Rows 3×10. Friday: "
        "Deadlifts 3×8, Walk 30 min. Rest on the other days.",
    ),
    (
        "writing",
        "Opening hours template for a shop window.",
        "Mon-Fri 08:00-18:00\nSat 09:00-14:00\nSun Closed\nBank holidays 10:00-16:00",
    ),
    (
        "writing",
        "Make a packing list for a weekend hike.",
        "Backpack (30 L), Water 2 L, Rain jacket, Map and Compass, First-aid kit, Headlamp, Snacks, Sun "
        "cream SPF 50, Spare socks.",
    ),
]
