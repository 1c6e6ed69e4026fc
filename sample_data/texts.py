"""Hand-written text tables used by generate.py: explanations, code answers, definitions, grammar fixes,
reviews, paragraphs to summarize, recipes, travel tips, brainstorming lists, email parts and code tasks."""

EXPLANATIONS = [
    (
        "How does photosynthesis work?",
        "Photosynthesis is the process plants, algae and some bacteria use to turn light into chemical energy. "
        "It happens mainly in the chloroplasts of leaf cells, which contain the green pigment chlorophyll.\n\n"
        "In the light-dependent reactions, chlorophyll absorbs sunlight and uses that energy to split water "
        "molecules. This releases oxygen as a by-product and produces two energy carriers, ATP and NADPH.\n\n"
        "In the second stage, the Calvin cycle, the plant uses ATP and NADPH to fix carbon dioxide from the air "
        "into a three-carbon sugar. Cells later build glucose, starch and cellulose from that sugar.\n\n"
        "The overall equation is 6 CO2 + 6 H2O + light energy -> C6H12O6 + 6 O2. Almost every food chain on "
        "Earth depends on this process, and it is also the source of most of the oxygen in our atmosphere. "
        "Factors such as light intensity, temperature and the amount of carbon dioxide all limit how fast it "
        "can run.",
    ),
    (
        "Why is the sky blue?",
        "Sunlight looks white but contains every colour of the visible spectrum. When it enters the atmosphere, "
        "it collides with nitrogen and oxygen molecules that are much smaller than the wavelength of light. These "
        "molecules scatter short wavelengths far more strongly than long ones, an effect called Rayleigh "
        "scattering; its strength grows with the inverse fourth power of the wavelength.\n\n"
        "Blue light is therefore scattered across the whole sky, and whichever direction you look, some of it "
        "reaches your eyes. Violet is scattered even more, but the Sun emits less violet, some is absorbed high "
        "in the atmosphere, and our eyes are less sensitive to it, so we see blue.\n\n"
        "At sunrise and sunset, light travels through much more air before reaching you. Most of the blue is "
        "scattered out of the beam along the way, leaving the reds and oranges that colour the horizon.",
    ),
    (
        "What caused the fall of the Western Roman Empire?",
        "Historians see the fall of the Western Roman Empire in 476 CE as the result of many pressures acting "
        "together over two centuries rather than a single cause.\n\n"
        "Politically, the third century brought constant civil wars, with dozens of emperors seizing and losing "
        "power, which weakened central authority. Economically, heavy taxation, debased coinage and inflation "
        "strained cities and farmers, while trade declined.\n\n"
        "Militarily, the empire relied more and more on Germanic troops and allied groups whose loyalty was "
        "uncertain. Migrations of Goths, Vandals and other peoples, partly pushed west by the Huns, put huge "
        "pressure on the frontiers. The Visigoths sacked Rome in 410 and the Vandals in 455.\n\n"
        "Splitting the empire into eastern and western halves also left the West poorer and more exposed. In "
        "476 the Germanic general Odoacer deposed the young emperor Romulus Augustulus, a date traditionally used "
        "to mark the end. The Eastern Empire, centred on Constantinople, survived for almost another thousand "
        "years.",
    ),
    (
        "Can you explain how vaccines train the immune system?",
        "A vaccine gives your immune system a safe preview of a germ so that it can prepare before a real "
        "infection happens.\n\n"
        "Most vaccines contain an antigen: a weakened or inactivated virus, a purified protein from its surface, "
        "or instructions such as mRNA that let your own cells make that protein for a short time. The immune "
        "system recognises the antigen as foreign and responds the way it would to an infection, but without "
        "the danger of the actual disease.\n\n"
        "B cells produce antibodies that bind to the antigen, and T cells learn to recognise and destroy "
        "infected cells. Crucially, some of these cells become long-lived memory cells. If you later meet the "
        "real pathogen, the memory cells recognise it within days instead of weeks, so the body clears it "
        "before it can cause serious illness.\n\n"
        "Some vaccines need booster doses because memory fades over time or because the virus changes, as "
        "influenza does every year.",
    ),
    (
        "What was the significance of the printing press?",
        "Johannes Gutenberg's printing press, developed in Mainz around 1440, combined movable metal type, "
        "oil-based ink and a screw press adapted from wine making. It made it possible to produce books quickly "
        "and cheaply for the first time in Europe.\n\n"
        "Before it, books were copied by hand, which made them rare and expensive. Within fifty years, presses "
        "in hundreds of European towns had printed millions of copies. Literacy spread, and knowledge that had "
        "been held by a small elite became widely available.\n\n"
        "The press also changed history directly. Martin Luther's writings spread across Germany in weeks, "
        "helping the Reformation take hold. Scientists could share identical copies of data and diagrams, which "
        "supported the Scientific Revolution. Standardised printed texts helped fix spelling and grammar in "
        "national languages. Many historians rank it among the most influential inventions of the last thousand "
        "years.",
    ),
    (
        "How do earthquakes happen?",
        "The Earth's outer shell is broken into tectonic plates that move slowly, a few centimetres per year, "
        "on the hotter rock beneath them. Where plates meet, their edges often lock together because of "
        "friction while the plates keep moving. Stress builds up in the rock over decades or centuries.\n\n"
        "When the stress exceeds the strength of the rock, it suddenly slips along a fault. The stored energy is "
        "released as seismic waves that travel through the ground, and that shaking is the earthquake. The point "
        "underground where slipping begins is the focus, and the point on the surface directly above it is the "
        "epicentre.\n\n"
        "Scientists measure the size of an earthquake with the moment magnitude scale. Each whole number step "
        "means roughly 32 times more energy. Most large earthquakes occur along plate boundaries such as the "
        "Pacific Ring of Fire.",
    ),
    (
        "What is inflation and why does it happen?",
        "Inflation is the general rise in prices across an economy over time, which means each unit of money "
        "buys fewer goods and services. It is usually measured with a consumer price index that tracks the cost "
        "of a typical basket of purchases.\n\n"
        "Economists describe a few main causes. Demand-pull inflation happens when spending grows faster than "
        "the economy can produce, for example after large stimulus or rapid credit growth. Cost-push inflation "
        "happens when production costs rise, such as during an oil price shock, and firms pass the costs on. "
        "Expectations matter too: if workers and businesses expect prices to rise, they ask for higher wages "
        "and set higher prices, which can make inflation persist.\n\n"
        "Central banks usually aim for low, stable inflation of around two percent. Their main tool is the "
        "interest rate: raising it makes borrowing more expensive, cools spending and slows price growth.",
    ),
    (
        "Why did the Titanic sink?",
        "The RMS Titanic struck an iceberg in the North Atlantic late on 14 April 1912 and sank less than three "
        "hours later. The collision buckled the hull plates along the starboard side and opened the first five "
        "or six watertight compartments to the sea. The ship was designed to stay afloat with four flooded, "
        "not more, so it was doomed.\n\n"
        "Several factors made the disaster worse. The ship was travelling fast despite ice warnings. The "
        "lookouts had no binoculars and the sea was unusually calm, which made the iceberg harder to spot. Most "
        "importantly, there were lifeboats for only about half of the 2,200 people on board, and many boats "
        "were launched partly empty. About 1,500 people died.\n\n"
        "The sinking led to the first International Convention for the Safety of Life at Sea, which required "
        "enough lifeboats for everyone and a constant radio watch.",
    ),
    (
        "How does a refrigerator keep food cold?",
        "A refrigerator does not create cold; it moves heat from inside the cabinet to the room outside. It "
        "does this with a refrigerant that circulates through a closed loop of pipes.\n\n"
        "The compressor squeezes the refrigerant gas, making it hot and high-pressure. The gas flows through the "
        "coils on the back, releases its heat into the kitchen and condenses into a liquid. The liquid then "
        "passes through a narrow expansion valve, where its pressure drops sharply and it becomes very cold. In "
        "the evaporator coils inside the fridge, it absorbs heat from the air and food and boils back into a "
        "gas, which returns to the compressor.\n\n"
        "A thermostat switches the compressor on and off to hold the set temperature. This is why the back of "
        "a fridge feels warm.",
    ),
    (
        "What is DNA and what does it do?",
        "DNA, or deoxyribonucleic acid, is the molecule that stores the genetic instructions of almost every "
        "living thing. It has the shape of a double helix: two long strands twisted around each other like a "
        "spiral ladder.\n\n"
        "Each rung is a pair of chemical bases. Adenine always pairs with thymine, and cytosine with guanine. "
        "The order of these bases along a strand is the genetic code. A gene is a stretch of DNA whose sequence "
        "tells the cell how to build a particular protein, and proteins do most of the work in cells, from "
        "digesting food to carrying oxygen.\n\n"
        "Because the two strands are complementary, each can serve as a template to rebuild the other. That is "
        "how DNA is copied before a cell divides, and how traits are passed from parents to children.",
    ),
    (
        "What started the First World War?",
        "The immediate trigger was the assassination of Archduke Franz Ferdinand, heir to the Austro-Hungarian "
        "throne, in Sarajevo on 28 June 1914 by the Bosnian Serb Gavrilo Princip. Austria-Hungary blamed Serbia "
        "and issued an ultimatum, then declared war a month later.\n\n"
        "The deeper causes explain why a regional crisis became a world war. Europe was divided into two "
        "alliance systems: France, Russia and Britain on one side, and Germany and Austria-Hungary on the "
        "other. Russia mobilised to support Serbia, Germany declared war on Russia and France, and its invasion "
        "of neutral Belgium brought Britain in.\n\n"
        "Historians also point to militarism and rigid mobilisation plans, an arms race between Britain and "
        "Germany, imperial rivalries, and nationalism in the Balkans.",
    ),
    (
        "How do black holes form?",
        "Most black holes form when a very massive star, at least around twenty times the mass of the Sun, "
        "reaches the end of its life. While a star is burning nuclear fuel, the outward pressure from fusion "
        "balances the inward pull of its own gravity.\n\n"
        "When the fuel in the core runs out, fusion stops and nothing can hold the core up. It collapses in a "
        "fraction of a second, while the outer layers are often blasted away in a supernova. If the remaining "
        "core is heavy enough, no known force can stop the collapse, and it shrinks to a region so dense that "
        "not even light can escape. The boundary of that region is the event horizon.\n\n"
        "Supermassive black holes, millions or billions of times the Sun's mass, sit at the centres of most "
        "galaxies. They probably grew by swallowing gas and merging with other black holes.",
    ),
    (
        "Explain the water cycle.",
        "The water cycle describes how water moves continuously between the oceans, the air and the land, "
        "powered by the Sun and by gravity.\n\n"
        "Heat from the Sun evaporates water from oceans, lakes and rivers, and plants release more through "
        "transpiration. The water vapour rises, cools and condenses around dust particles into tiny droplets "
        "that form clouds. When the droplets merge and grow heavy, they fall as precipitation: rain, snow, "
        "sleet or hail.\n\n"
        "On land, some of that water runs off into streams and rivers that flow back to the sea. Some soaks "
        "into the soil and becomes groundwater, which can stay underground for thousands of years. Some is "
        "stored as ice in glaciers. Eventually it all evaporates again, and the cycle continues.",
    ),
    (
        "What was the Renaissance?",
        "The Renaissance was a period of European cultural revival that began in Italy in the fourteenth "
        "century and spread north over the next two hundred years. The word means rebirth, referring to "
        "renewed interest in the art and learning of ancient Greece and Rome.\n\n"
        "Its central idea was humanism, which focused on human potential, education and the study of classical "
        "texts. Wealthy patrons such as the Medici family in Florence funded artists and scholars. Painters "
        "like Leonardo da Vinci, Michelangelo and Raphael developed linear perspective and realistic anatomy, "
        "and architects like Brunelleschi revived classical forms.\n\n"
        "The printing press spread these ideas quickly, and the period laid foundations for modern science, "
        "politics and art.",
    ),
    (
        "How do antibiotics work, and why is resistance a problem?",
        "Antibiotics are drugs that kill bacteria or stop them from multiplying. They work by targeting "
        "structures that bacteria have but human cells do not. Penicillin, for example, blocks the building of "
        "the bacterial cell wall, so the cells burst. Others interfere with bacterial ribosomes or with the "
        "copying of bacterial DNA. Antibiotics have no effect on viruses, so they do not help with colds or "
        "flu.\n\n"
        "Resistance develops through natural selection. In any large population of bacteria, a few may carry "
        "mutations that let them survive a drug. When the antibiotic kills the others, those survivors multiply "
        "and can pass resistance genes to other bacteria. Overuse in medicine and farming, and stopping a course "
        "early, speed this up. Resistant infections are harder and more expensive to treat.",
    ),
    (
        "What is the greenhouse effect?",
        "The greenhouse effect is the warming of a planet's surface by gases in its atmosphere that trap heat. "
        "Sunlight passes through the atmosphere and warms the ground. The warm surface then gives off energy "
        "as infrared radiation. Gases such as water vapour, carbon dioxide, methane and nitrous oxide absorb "
        "much of that infrared energy and re-emit it in all directions, including back toward the surface.\n\n"
        "Without this natural effect, Earth's average temperature would be about minus 18 degrees Celsius "
        "instead of around 15, too cold for most life. The concern today is the enhanced greenhouse effect: "
        "burning coal, oil and gas and clearing forests have raised carbon dioxide levels by about fifty "
        "percent since the industrial revolution, trapping more heat and warming the climate.",
    ),
    (
        "Why did the Industrial Revolution start in Britain?",
        "The Industrial Revolution began in Britain in the second half of the eighteenth century for several "
        "connected reasons. Britain had large, easily mined deposits of coal and iron ore, often close "
        "together. Its wages were high while coal was cheap, which gave businesses a strong incentive to "
        "replace labour with machines.\n\n"
        "The country also had a stable political system, patent laws that rewarded inventors, and banks willing "
        "to lend. An agricultural revolution raised food output and freed workers to move to towns. A growing "
        "empire and a powerful navy provided raw materials such as cotton and markets for finished goods. "
        "Canals and, later, railways moved heavy goods cheaply. Inventions like Watt's steam engine and the "
        "spinning jenny then transformed textile production.",
    ),
    (
        "How does the heart pump blood?",
        "The heart is a muscular pump with four chambers: two upper atria and two lower ventricles. The right "
        "side handles blood low in oxygen and the left side handles oxygen-rich blood.\n\n"
        "Blood returning from the body enters the right atrium, passes into the right ventricle and is pumped "
        "to the lungs, where it picks up oxygen and releases carbon dioxide. It returns to the left atrium, "
        "moves into the left ventricle, and that thick-walled chamber pumps it out through the aorta to the "
        "rest of the body.\n\n"
        "Each beat starts with an electrical signal from the sinoatrial node, the heart's natural pacemaker. "
        "Valves between the chambers open and close to keep blood flowing in one direction, and their closing "
        "makes the familiar lub-dub sound.",
    ),
    (
        "What was the Cold War?",
        "The Cold War was a long period of rivalry between the United States and the Soviet Union and their "
        "allies, lasting from shortly after the Second World War until the Soviet Union dissolved in 1991. It "
        "was called cold because the two superpowers never fought each other directly.\n\n"
        "Instead they competed through an arms race that produced tens of thousands of nuclear weapons, a space "
        "race that ended with the Moon landing, and proxy wars in places such as Korea, Vietnam and "
        "Afghanistan. Europe was divided by the Iron Curtain, symbolised by the Berlin Wall. The Cuban Missile "
        "Crisis of 1962 brought the world close to nuclear war. Reforms under Mikhail Gorbachev and revolutions "
        "across Eastern Europe in 1989 brought the conflict to an end.",
    ),
    (
        "How do tides work?",
        "Tides are the regular rise and fall of sea level caused mainly by the Moon's gravity. The Moon pulls "
        "most strongly on the side of the Earth facing it, drawing the ocean into a bulge. On the far side, the "
        "Moon pulls the Earth itself more than the water, so a second bulge forms there.\n\n"
        "As the Earth rotates through these two bulges, most coasts get two high tides and two low tides about "
        "every 24 hours and 50 minutes. The Sun has a smaller effect. When the Sun and Moon line up at new and "
        "full moon, their pulls combine into larger spring tides; when they are at right angles, the smaller "
        "neap tides occur. Coastline shape can make the range huge, as in the Bay of Fundy.",
    ),
    (
        "What is the theory of evolution by natural selection?",
        "The theory, set out by Charles Darwin and Alfred Russel Wallace in 1858, explains how species change "
        "over many generations.\n\n"
        "It rests on a few observations. Individuals in a population vary, for example in size, colour or "
        "speed. Much of this variation is inherited. More offspring are born than can survive, so there is "
        "competition for food, mates and shelter. Individuals whose traits suit their environment are more "
        "likely to survive and reproduce, passing those traits on.\n\n"
        "Over long periods, favourable traits become more common, and populations can diverge into new "
        "species. Genetics later explained the source of variation: mutations and the shuffling of genes during "
        "reproduction. Evidence comes from fossils, DNA comparisons and direct observation, such as bacteria "
        "evolving antibiotic resistance.",
    ),
    (
        "Why do we have seasons?",
        "Seasons happen because the Earth's axis is tilted by about 23.5 degrees relative to its orbit around "
        "the Sun, not because the Earth gets closer to or farther from the Sun.\n\n"
        "As the Earth orbits, the tilt stays pointed the same way in space. For part of the year the Northern "
        "Hemisphere leans toward the Sun: sunlight hits it more directly and days are longer, so it has summer. "
        "Six months later it leans away, the light arrives at a low angle and spreads over a larger area, days "
        "are short, and it has winter. The Southern Hemisphere has the opposite seasons at the same time. Near "
        "the equator the angle changes little, so seasons there are mild.",
    ),
    (
        "What was the Magna Carta?",
        "The Magna Carta, or Great Charter, was an agreement sealed by King John of England at Runnymede in "
        "June 1215 under pressure from rebellious barons. John had lost wars in France and raised heavy taxes, "
        "and the barons wanted limits on his power.\n\n"
        "The charter promised protection of church rights, limits on feudal payments, and, most famously, that "
        "no free man could be imprisoned or punished except by the lawful judgement of his peers or the law of "
        "the land. The original was annulled by the Pope within months, but it was reissued several times. Over "
        "the centuries it became a symbol of the principle that rulers are subject to the law, and it "
        "influenced later documents such as the United States Bill of Rights.",
    ),
    (
        "How does electricity reach my home?",
        "Electricity usually starts at a power station, which might burn gas, split atoms, or harness wind, "
        "water or sunlight. Generators turn that energy into an electric current.\n\n"
        "Step-up transformers then raise the voltage to hundreds of thousands of volts, because high voltage "
        "means lower current and much smaller losses over long transmission lines. The power crosses the "
        "country on tall pylons to substations, where transformers lower the voltage for local distribution "
        "lines. A final transformer on a pole or in a green street cabinet lowers it again to the 230 or 120 "
        "volts used at home. It then passes through your meter and the fuse box to the outlets.",
    ),
]


F = "```"


CODING = [
    (
        "Write a Python function that checks whether a string is a palindrome, ignoring case and spaces.",
        f"Normalize the string first, then compare it with its reverse:\n\n{F}python\ndef is_palindrome(text: str) -> bool:\n"
        f'    cleaned = "".join(ch.lower() for ch in text if ch.isalnum())\n    return cleaned == cleaned[::-1]\n{F}\n\n'
        "Keeping only alphanumeric characters means spaces and punctuation are ignored, so "
        '`is_palindrome("Never odd or even")` returns `True`. Slicing with `[::-1]` builds the reversed string in '
        "a single step, and the whole check runs in linear time.",
    ),
    (
        "How do I read a CSV file in Python and compute the average of one column?",
        f"The standard library's `csv` module is enough for this:\n\n{F}python\nimport csv\n\n"
        f'def column_average(path, column):\n    with open(path, newline="") as f:\n'
        f"        values = [float(row[column]) for row in csv.DictReader(f) if row[column]]\n"
        f'    return sum(values) / len(values) if values else None\n\n\nprint(column_average("sales.csv", "amount"))\n{F}\n\n'
        "`DictReader` uses the header row as keys, so you can refer to the column by name. Empty cells are "
        "skipped, and the function returns `None` for a file without values instead of dividing by zero. For "
        "large or messy files, pandas offers `pd.read_csv(path)[column].mean()`.",
    ),
    (
        "Write a SQL query that returns the five customers who spent the most in 2023.",
        f"Assuming an `orders` table with `customer_id`, `amount` and `order_date`, and a `customers` table:\n\n"
        f"{F}sql\nSELECT c.id, c.name, SUM(o.amount) AS total_spent\nFROM customers AS c\n"
        f"JOIN orders AS o ON o.customer_id = c.id\nWHERE o.order_date >= '2023-01-01'\n  AND o.order_date < '2024-01-01'\n"
        f"GROUP BY c.id, c.name\nORDER BY total_spent DESC\nLIMIT 5;\n{F}\n\n"
        "The half-open date range includes every order on 31 December even when `order_date` stores a time. "
        "Grouping by customer adds up their orders, and sorting by the total in descending order with `LIMIT 5` "
        "keeps the top five. On SQL Server, use `SELECT TOP 5` instead of `LIMIT`.",
    ),
    (
        "In JavaScript, how do I remove duplicate values from an array?",
        f"The shortest way is to pass the array through a `Set`, which only keeps unique values:\n\n{F}javascript\n"
        f"const numbers = [3, 1, 3, 2, 1, 5];\nconst unique = [...new Set(numbers)];\nconsole.log(unique); // [3, 1, 2, 5]\n{F}\n\n"
        "The order of first appearance is preserved. This works for primitives such as numbers and strings. "
        "Objects are compared by reference, so two different objects with the same fields both stay; for those, "
        "deduplicate by a key:\n\n"
        f"{F}javascript\nconst byId = [...new Map(users.map(u => [u.id, u])).values()];\n{F}",
    ),
    (
        "Write a Python function that returns the n-th Fibonacci number efficiently.",
        f"An iterative loop avoids the exponential cost of naive recursion:\n\n{F}python\ndef fibonacci(n: int) -> int:\n"
        f'    if n < 0:\n        raise ValueError("n must be non-negative")\n    a, b = 0, 1\n    for _ in range(n):\n'
        f"        a, b = b, a + b\n    return a\n{F}\n\n"
        "With this definition `fibonacci(0)` is 0, `fibonacci(1)` is 1 and `fibonacci(10)` is 55. It runs in "
        "O(n) time and constant memory. Python integers have arbitrary precision, so it also works for large n "
        "such as 1,000 without overflow.",
    ),
    (
        "What's the difference between a list and a tuple in Python?",
        f"Both are ordered sequences, but a list is mutable and a tuple is immutable.\n\n{F}python\n"
        f'colors = ["red", "green"]\ncolors.append("blue")      # fine\n\npoint = (3, 4)\n'
        f"point[0] = 5                # TypeError: 'tuple' object does not support item assignment\n{F}\n\n"
        "Use a list for a collection that grows or changes, such as items in a shopping cart. Use a tuple for a "
        "fixed group of values that belong together, such as coordinates or a database row. Because tuples are "
        "immutable and hashable when their items are, they can serve as dictionary keys, and they use slightly "
        "less memory.",
    ),
    (
        "Write a SQL query to find duplicate email addresses in a users table.",
        f"Group by the email and keep groups with more than one row:\n\n{F}sql\nSELECT LOWER(email) AS email, COUNT(*) AS copies\n"
        f"FROM users\nGROUP BY LOWER(email)\nHAVING COUNT(*) > 1\nORDER BY copies DESC;\n{F}\n\n"
        "`HAVING` filters after grouping, which `WHERE` cannot do. Lower-casing catches addresses that differ "
        "only in capitalisation. To see the full rows, join this result back to `users` on `LOWER(email)`. Once "
        "the duplicates are cleaned up, a unique index on the lower-cased email prevents new ones.",
    ),
    (
        "How can I make an HTTP GET request in JavaScript and handle errors?",
        f"Use `fetch` with `async`/`await`, and remember that `fetch` only rejects on network failures:\n\n"
        f"{F}javascript\nasync function getJson(url) {{\n  const response = await fetch(url);\n  if (!response.ok) {{\n"
        f"    throw new Error(`Request failed with status ${{response.status}}`);\n  }}\n  return response.json();\n}}\n\n"
        f'getJson("https://api.example.com/items")\n  .then(items => console.log(items))\n  .catch(err => console.error(err.message));\n{F}\n\n'
        "Checking `response.ok` turns 404 and 500 responses into errors as well, so one `catch` handles every "
        "failure.",
    ),
    (
        "Write a Python function that counts how often each word appears in a text.",
        f"`collections.Counter` does the counting for you:\n\n{F}python\nimport re\nfrom collections import Counter\n\n"
        f'def word_counts(text: str) -> Counter:\n    words = re.findall(r"[a-z\']+", text.lower())\n    return Counter(words)\n\n\n'
        f"counts = word_counts(\"The cat and the hat. The end!\")\nprint(counts.most_common(2))  # [('the', 3), ('cat', 1)]\n{F}\n\n"
        'Lower-casing makes "The" and "the" the same word, and the regular expression drops punctuation while '
        'keeping apostrophes in words like "don\'t". `most_common(n)` returns the n most frequent words.',
    ),
    (
        "Explain what a Python decorator is with a small example.",
        f"A decorator is a function that takes another function and returns a new one that adds behaviour "
        f"around it. The `@` syntax applies it when the function is defined.\n\n{F}python\nimport time\n"
        f"from functools import wraps\n\ndef timed(func):\n    @wraps(func)\n    def wrapper(*args, **kwargs):\n"
        f"        start = time.perf_counter()\n        result = func(*args, **kwargs)\n"
        f'        print(f"{{func.__name__}} took {{time.perf_counter() - start:.3f}}s")\n        return result\n    return wrapper\n\n'
        f"@timed\ndef slow_sum(n):\n    return sum(range(n))\n{F}\n\n"
        "Calling `slow_sum(10_000_000)` now prints how long it took. `functools.wraps` keeps the original name "
        "and docstring.",
    ),
    (
        "How do I reverse a string in JavaScript?",
        f"Strings have no `reverse` method, but arrays do, so split, reverse and join:\n\n{F}javascript\n"
        f'const reverse = s => [...s].reverse().join("");\nconsole.log(reverse("stressed")); // "desserts"\n{F}\n\n'
        "Spreading with `[...s]` splits the string into Unicode code points, so emoji and other characters "
        'outside the basic plane are not torn in half, which can happen with `s.split("")`. Characters built '
        "from several code points, such as flags, still need a grapheme-aware library.",
    ),
    (
        "Write a SQL query that shows the number of orders per month.",
        f"Truncate each date to its month and count:\n\n{F}sql\nSELECT DATE_TRUNC('month', order_date) AS month,\n"
        f"       COUNT(*) AS orders\nFROM orders\nGROUP BY 1\nORDER BY 1;\n{F}\n\n"
        "This is PostgreSQL syntax. In MySQL use `DATE_FORMAT(order_date, '%Y-%m')`, and in SQLite "
        "`strftime('%Y-%m', order_date)`. Months with no orders will not appear at all; if you need them as zero, "
        "generate a series of months and left join the counts onto it.",
    ),
    (
        "Write a Python function to flatten a nested list of any depth.",
        f"Recursion handles any depth cleanly:\n\n{F}python\ndef flatten(items):\n    result = []\n    for item in items:\n"
        f"        if isinstance(item, list):\n            result.extend(flatten(item))\n        else:\n"
        f"            result.append(item)\n    return result\n\n\nprint(flatten([1, [2, [3, [4]], 5]]))  # [1, 2, 3, 4, 5]\n{F}\n\n"
        "Each nested list is flattened by a recursive call and its items are added to the result. For extremely "
        "deep nesting, beyond Python's recursion limit of about a thousand levels, switch to an explicit stack.",
    ),
    (
        "What does `git rebase` do compared to `git merge`?",
        f"Both bring changes from one branch into another, but they shape history differently.\n\n{F}bash\n"
        f"git checkout feature\ngit merge main     # adds a merge commit joining both histories\n"
        f"git rebase main    # replays feature's commits on top of main\n{F}\n\n"
        "A merge keeps the exact history and records when branches were combined, at the cost of extra merge "
        "commits. A rebase rewrites your branch's commits so they appear to start from the tip of `main`, which "
        "gives a straight, linear history. Because rebasing creates new commits, avoid rebasing branches that "
        "other people have already pulled.",
    ),
    (
        "How do I sort a list of dictionaries by a key in Python?",
        f'Pass a `key` function to `sorted`:\n\n{F}python\npeople = [\n    {{"name": "Ana", "age": 31}},\n'
        f'    {{"name": "Bo", "age": 25}},\n    {{"name": "Cy", "age": 40}},\n]\n\n'
        f'by_age = sorted(people, key=lambda p: p["age"])\noldest_first = sorted(people, key=lambda p: p["age"], reverse=True)\n{F}\n\n'
        "`sorted` returns a new list and leaves the original alone; `people.sort(key=...)` sorts in place. "
        '`operator.itemgetter("age")` is a slightly faster alternative to the lambda, and a tuple key such as '
        '`(p["age"], p["name"])` breaks ties.',
    ),
    (
        "Write a JavaScript function that debounces another function.",
        f"A debounced function waits until calls have stopped for a given delay before running:\n\n{F}javascript\n"
        f"function debounce(fn, delay) {{\n  let timer;\n  return function (...args) {{\n    clearTimeout(timer);\n"
        f"    timer = setTimeout(() => fn.apply(this, args), delay);\n  }};\n}}\n\n"
        f'const onResize = debounce(() => console.log("resized"), 200);\nwindow.addEventListener("resize", onResize);\n{F}\n\n'
        "Every call clears the pending timer and starts a new one, so the handler fires once, 200 milliseconds "
        "after the user stops resizing the window. It is useful for search boxes and scroll handlers.",
    ),
    (
        "How do I handle a missing file gracefully in Python?",
        f"Catch the specific exception instead of checking first:\n\n{F}python\nfrom pathlib import Path\n\n"
        f'def load_settings(path="settings.txt"):\n    try:\n        return Path(path).read_text(encoding="utf-8")\n'
        f'    except FileNotFoundError:\n        print(f"{{path}} not found, using defaults")\n        return ""\n{F}\n\n'
        "Catching `FileNotFoundError` rather than a bare `except` means real problems, such as a permission error "
        "or a bug in your code, still surface. Trying the operation directly also avoids a race where the file "
        "disappears between an existence check and the read.",
    ),
    (
        "Write a SQL query that finds employees who earn more than their manager.",
        f"Join the employees table to itself:\n\n{F}sql\nSELECT e.name AS employee, e.salary, m.name AS manager, m.salary AS manager_salary\n"
        f"FROM employees AS e\nJOIN employees AS m ON e.manager_id = m.id\nWHERE e.salary > m.salary;\n{F}\n\n"
        "The alias `e` stands for the employee and `m` for the manager, so each row pairs a person with their "
        "boss. Employees without a manager drop out of the inner join, which is what you want here because "
        "there is nobody to compare them with.",
    ),
    (
        "What is a closure in JavaScript?",
        f"A closure is a function that remembers the variables from the scope where it was created, even after "
        f"that scope has finished running.\n\n{F}javascript\nfunction makeCounter() {{\n  let count = 0;\n"
        f"  return () => ++count;\n}}\n\nconst next = makeCounter();\nnext(); // 1\nnext(); // 2\n{F}\n\n"
        "`makeCounter` has returned, yet the arrow function still reads and updates `count`. Each call to "
        "`makeCounter` creates a fresh, private `count`. Closures are how JavaScript implements private state, "
        "callbacks that carry context, and helpers like debounce.",
    ),
    (
        "Write a Python script that renames all .txt files in a folder to add today's date.",
        f"`pathlib` and `datetime` make this short:\n\n{F}python\nfrom datetime import date\nfrom pathlib import Path\n\n"
        f'folder = Path("notes")\nstamp = date.today().isoformat()\n\nfor path in folder.glob("*.txt"):\n'
        f'    new_path = path.with_name(f"{{path.stem}}_{{stamp}}{{path.suffix}}")\n    path.rename(new_path)\n'
        f'    print(f"{{path.name}} -> {{new_path.name}}")\n{F}\n\n'
        "A file named `ideas.txt` becomes something like `ideas_2024-05-01.txt`. The ISO date format sorts "
        "correctly by name. Try it on a copy of the folder first, because renames cannot be undone easily.",
    ),
]


DEFINITIONS = [  # word, part of speech, meaning, example, note
    (
        "ephemeral",
        "adjective",
        "lasting for a very short time",
        "The ephemeral beauty of cherry blossoms draws crowds to the parks every April.",
        "It comes from the Greek ephemeros, meaning lasting only a day, and is often used for trends, art or moods.",
    ),
    (
        "ubiquitous",
        "adjective",
        "present, appearing or found everywhere",
        "Smartphones have become ubiquitous on commuter trains.",
        "It is slightly formal; in everyday speech people might say something is everywhere or all over the place.",
    ),
    (
        "mitigate",
        "verb",
        "to make something bad less severe, serious or painful",
        "Planting trees along the river helped mitigate the damage from spring floods.",
        "It is often confused with militate, which means to be a strong factor against something.",
    ),
    (
        "serendipity",
        "noun",
        "the occurrence of happy or useful events by chance",
        "By pure serendipity, she sat next to the editor who later published her first novel.",
        "The writer Horace Walpole coined it in 1754 from a Persian fairy tale, The Three Princes of Serendip.",
    ),
    (
        "pragmatic",
        "adjective",
        "dealing with things sensibly and realistically, based on practical rather than "
        "theoretical considerations",
        "Instead of redesigning the whole system, the team took a pragmatic approach "
        "and fixed the slowest query first.",
        "The related noun is pragmatism, and a person with this attitude is a pragmatist.",
    ),
    (
        "latency",
        "noun",
        "the delay between a cause and its effect, especially the time it takes data to travel "
        "across a network",
        "Players in the online game complained about high latency on the European servers.",
        "In computing it is usually measured in milliseconds and is different from bandwidth, which is how much data "
        "can move per second.",
    ),
    (
        "benevolent",
        "adjective",
        "well meaning and kindly",
        "A benevolent neighbour left a basket of vegetables on our doorstep every Sunday.",
        "Its opposite is malevolent; both come from Latin, with bene meaning well and male meaning badly.",
    ),
    (
        "procrastinate",
        "verb",
        "to delay or postpone doing something, usually out of habit or reluctance",
        "He tends to procrastinate on his tax return until the night before the deadline.",
        "It comes from the Latin cras, meaning tomorrow, so it literally means putting something off until tomorrow.",
    ),
    (
        "photosynthesis",
        "noun",
        "the process by which green plants use sunlight, water and carbon dioxide to make "
        "their own food and release oxygen",
        "Without photosynthesis, there would be almost no oxygen in the air we breathe.",
        "It combines the Greek words photo, light, and synthesis, putting together.",
    ),
    (
        "ambiguous",
        "adjective",
        "open to more than one interpretation; not having one obvious meaning",
        "The contract's wording was ambiguous, so both companies claimed they were right.",
        "The noun is ambiguity. Writers remove it by choosing more precise words or adding context.",
    ),
    (
        "resilience",
        "noun",
        "the capacity to recover quickly from difficulties, or the ability of a material to "
        "spring back into shape",
        "The town showed remarkable resilience after the storm and reopened its school within a week.",
        "Engineers, psychologists and ecologists all use the word, each with a slightly different technical sense.",
    ),
    (
        "catalyst",
        "noun",
        "a substance that speeds up a chemical reaction without being used up, or more generally "
        "a person or event that causes change",
        "The new bridge was a catalyst for growth on the quiet side of the river.",
        "Enzymes are the catalysts of living cells; in cars, a catalytic converter uses metals such as platinum.",
    ),
    (
        "candid",
        "adjective",
        "truthful and straightforward; frank",
        "In a candid interview, the coach admitted the team had not trained hard enough.",
        "A candid photograph is one taken without the subject posing, which keeps a similar idea of honesty.",
    ),
    (
        "algorithm",
        "noun",
        "a finite sequence of well-defined steps for solving a problem or performing a computation",
        "The recipe for long division you learned at school is an algorithm.",
        "The word comes from the name of the ninth-century Persian mathematician al-Khwarizmi.",
    ),
    (
        "meticulous",
        "adjective",
        "showing great attention to detail; very careful and precise",
        "The restorer was meticulous, cleaning the painting one square centimetre at a time.",
        "It is a compliment in most contexts, though it can hint that someone is slow or fussy.",
    ),
    (
        "equinox",
        "noun",
        "either of the two days each year when day and night are of roughly equal length",
        "The spring equinox falls around 20 March in the Northern Hemisphere.",
        "On an equinox the Sun is directly above the equator; the name comes from Latin for equal night.",
    ),
]


GRAMMAR = [  # sentence with errors, corrected sentence, explanations
    (
        "Me and him goes to the gym every mornings.",
        "He and I go to the gym every morning.",
        [
            "Use subject pronouns (he, I) for the subject, and put yourself last out of politeness.",
            "A plural subject takes the plural verb go, not goes.",
            "Every is followed by a singular noun: morning.",
        ],
    ),
    (
        "Their going to announce the results tomorrow, but there not sure of the time.",
        "They're going to announce the results tomorrow, but they're not sure of the time.",
        [
            "Their is possessive; the contraction of they are is they're.",
            "The same fix applies to the second clause, where there should also be they're.",
        ],
    ),
    (
        "Its been raining all day and the dog wont stop barking at it's reflection.",
        "It's been raining all day, and the dog won't stop barking at its reflection.",
        [
            "It's (it has) needs an apostrophe; the possessive its never does.",
            "Won't is a contraction of will not and needs an apostrophe.",
            "A comma before and separates two independent clauses.",
        ],
    ),
    (
        "If I would have known about the traffic, I would of left earlier.",
        "If I had known about the traffic, I would have left earlier.",
        [
            "In the if-clause of a past conditional, use the past perfect (had known), not would have.",
            "Would of is a mishearing of would've, so write would have.",
        ],
    ),
    (
        "Less people came to the meeting then we expected.",
        "Fewer people came to the meeting than we expected.",
        [
            "Use fewer with things you can count, such as people, and less with amounts, such as time or water.",
            "Than is used for comparisons; then refers to time.",
        ],
    ),
    (
        "The team have finished they're report, who was due on friday.",
        "The team has finished its report, which was due on Friday.",
        [
            "In American English a collective noun like team usually takes a singular verb and the pronoun its.",
            "Use which, not who, for things.",
            "Days of the week are capitalised.",
        ],
    ),
    (
        "Between you and I, the new manager don't really understand the product.",
        "Between you and me, the new manager doesn't really understand the product.",
        [
            "After a preposition such as between, use the object pronoun me.",
            "A singular subject (the manager) takes doesn't rather than don't.",
        ],
    ),
    (
        "She has went to Spain three times and she loved it every time.",
        "She has gone to Spain three times, and she has loved it every time.",
        [
            "The past participle of go is gone; went is the simple past.",
            "Keeping the second clause in the present perfect makes the tenses consistent.",
        ],
    ),
    (
        "Walking down the street, the trees looked beautiful.",
        "Walking down the street, I thought the trees looked beautiful.",
        [
            "The original is a dangling modifier: it says the trees were walking.",
            "Adding the person who was walking right after the comma fixes the meaning.",
        ],
    ),
    (
        "Everyone should bring their own lunch, the cafeteria are closed today.",
        "Everyone should bring their own lunch; the cafeteria is closed today.",
        [
            "Joining two complete sentences with only a comma creates a comma splice; a semicolon or a full stop fixes it.",
            "The cafeteria is a single place, so it takes is.",
            "Singular they (their) after everyone is widely accepted.",
        ],
    ),
    (
        "I could care less about what they thinks of my haircut.",
        "I couldn't care less about what they think of my haircut.",
        [
            "The idiom means you care as little as possible, so the logical form is couldn't care less.",
            "They takes the plural verb think.",
        ],
    ),
    (
        "Neither the manager nor the employees was aware of the new policy.",
        "Neither the manager nor the employees were aware of the new policy.",
        [
            "With neither...nor, the verb agrees with the nearer subject.",
            "Employees is plural, so the verb is were.",
        ],
    ),
    (
        "Who's car is parked in front of the garage, and whom is going to move it?",
        "Whose car is parked in front of the garage, and who is going to move it?",
        [
            "Whose is the possessive; who's means who is.",
            "Use who, not whom, for the subject of a verb such as is going.",
        ],
    ),
    (
        "The data shows that alot of customers prefers the older design.",
        "The data show that a lot of customers prefer the older design.",
        [
            "A lot is always two words.",
            "Customers is plural, so the verb is prefer.",
            "In formal writing data is often treated as plural (the data show), though the data shows is also common.",
        ],
    ),
]


REVIEWS = [  # review, label, reason
    (
        "The battery lasts two full days and the screen is gorgeous. Best phone I've owned.",
        "positive",
        "praises the battery life and display and calls it the best phone the writer has owned",
    ),
    (
        "Arrived with a cracked lid and customer service never answered my emails.",
        "negative",
        "reports a damaged product and unresponsive customer service",
    ),
    (
        "It does what it says. Nothing special, but fine for the price.",
        "neutral",
        "says the product works as described without strong praise or complaint",
    ),
    (
        "The hotel staff went out of their way to help us find a doctor at midnight. Truly kind people.",
        "positive",
        "describes staff going beyond their duties and calls them kind",
    ),
    (
        "Food was cold, the waiter was rude, and we waited forty minutes for the bill.",
        "negative",
        "lists three separate complaints about food, service and waiting time",
    ),
    (
        "Delivery took a week, which is what the website said it would.",
        "neutral",
        "states a fact that matched expectations, with no emotional language",
    ),
    (
        "I was skeptical, but this blender crushes ice in seconds and cleans up easily. Love it.",
        "positive",
        "overcomes initial doubt and ends with clear enthusiasm",
    ),
    (
        "The sequel has none of the charm of the first film and drags on for almost three hours.",
        "negative",
        "compares it unfavourably with the original and criticises the length",
    ),
    (
        "Comfortable shoes, though they run a little small, so order half a size up.",
        "positive",
        "is mostly favourable (comfortable) with a practical sizing tip rather than a complaint",
    ),
    (
        "The app crashes every time I try to upload a photo. Uninstalled.",
        "negative",
        "describes a repeated failure and ends with the writer abandoning the app",
    ),
    (
        "The book covers the basics of accounting in twelve chapters with exercises at the end.",
        "neutral",
        "only describes the contents without judging them",
    ),
    (
        "Our tour guide made ancient history feel alive. The kids didn't want the day to end.",
        "positive",
        "credits the guide and reports that the children enjoyed it",
    ),
]


SUMMARIES = [  # paragraph, summary
    (
        "Urban beekeeping has grown rapidly over the past decade, with hives appearing on rooftops, balconies and "
        "community gardens in cities such as London, Paris and New York. Supporters argue that city bees benefit "
        "from a wide variety of flowering plants in parks and gardens and face fewer pesticides than bees on "
        "farmland. However, some ecologists warn that too many honeybee hives can compete with wild bees for "
        "limited nectar and pollen, and they urge cities to plant more flowers rather than simply adding hives.",
        "Urban beekeeping is booming in major cities, where bees enjoy diverse flowers and fewer pesticides. "
        "Ecologists caution, though, that too many honeybee hives may starve wild bees of nectar and pollen, so "
        "they recommend that cities focus on planting more flowers instead of just adding hives.",
    ),
    (
        "The four-day work week has been trialled by dozens of companies in the United Kingdom, Iceland and "
        "Spain. In most trials, employees kept their full salary while working about 32 hours. Companies reported "
        "that productivity stayed the same or improved, while staff reported less stress, better sleep and fewer "
        "sick days. Critics note that the model is harder to apply in sectors such as healthcare and retail, "
        "where someone must always be present, and that the trials mostly involved firms that volunteered.",
        "Trials of a four-day, 32-hour week on full pay in the UK, Iceland and Spain found steady or better "
        "productivity along with less stress and fewer sick days. Critics point out that round-the-clock sectors "
        "may struggle to adopt it and that participating firms were self-selected.",
    ),
    (
        "Microplastics are fragments of plastic smaller than five millimetres. They come from the breakdown of "
        "larger items such as bottles and bags, from synthetic clothing fibres released in washing machines, and "
        "from tyre wear on roads. Researchers have found them in oceans, soil, drinking water, and even human "
        "blood. While the long-term health effects are not yet understood, early laboratory studies suggest they "
        "may cause inflammation, and scientists are calling for better filtration and less single-use plastic.",
        "Microplastics, pieces under five millimetres from broken-down plastic, clothing fibres and tyres, now "
        "turn up everywhere from oceans to human blood. Their health effects are still unclear, but early studies "
        "hint at inflammation, so scientists want better filtration and less single-use plastic.",
    ),
    (
        "When the Panama Canal opened in 1914, it cut the sea journey between New York and San Francisco by "
        "about 13,000 kilometres. The canal uses a system of locks to raise ships 26 metres to Gatun Lake and "
        "lower them again on the other side. Each transit uses millions of litres of fresh water from the lake. "
        "In recent years droughts have lowered the water level, forcing the canal authority to limit the number "
        "and weight of ships that can pass each day.",
        "Opened in 1914, the Panama Canal shortened the New York to San Francisco voyage by about 13,000 km, "
        "lifting ships through locks to Gatun Lake. Because every crossing uses large amounts of lake water, "
        "recent droughts have forced limits on how many ships can pass and how heavy they can be.",
    ),
    (
        "Sleep researchers recommend that adults get between seven and nine hours of sleep a night. During deep "
        "sleep the body repairs tissue and strengthens the immune system, while REM sleep helps the brain "
        "consolidate memories and process emotions. Regularly sleeping less than six hours has been linked to "
        "weight gain, heart disease and poorer concentration. Simple habits such as keeping a consistent bedtime, "
        "avoiding screens late at night and limiting caffeine after lunch can improve sleep quality.",
        "Adults need seven to nine hours of sleep: deep sleep repairs the body and immune system, and REM sleep "
        "supports memory and emotions. Chronic short sleep is tied to weight gain, heart disease and poor focus, "
        "but consistent bedtimes, fewer late screens and less afternoon caffeine help.",
    ),
    (
        "Public libraries have changed a great deal since the arrival of the internet. Many now lend e-books, "
        "laptops and Wi-Fi hotspots, and run classes in coding, job applications and digital skills. They also "
        "serve as quiet, free places to work for people without space at home. Despite this, many libraries face "
        "budget cuts, and some towns have reduced opening hours or closed branches entirely, which hits elderly "
        "and low-income residents hardest.",
        "Libraries have adapted to the internet era by lending e-books and devices, teaching digital skills and "
        "offering free workspace. Budget cuts, however, have shortened hours or closed branches in many towns, "
        "which mainly hurts elderly and low-income people who rely on them.",
    ),
    (
        "The Great Barrier Reef stretches for more than 2,300 kilometres along the coast of Queensland, "
        "Australia, and is home to thousands of species of fish, coral and molluscs. Rising sea temperatures have "
        "caused several mass bleaching events since 1998, in which stressed corals expel the algae that give them "
        "colour and food. Corals can recover if temperatures fall quickly, but repeated bleaching leaves little "
        "time for recovery, and scientists say cutting greenhouse gas emissions is the only long-term solution.",
        "The Great Barrier Reef, over 2,300 km long and rich in species, has suffered repeated mass bleaching as "
        "seas warm and corals expel their algae. Corals can recover when waters cool, but frequent events leave "
        "too little time, so scientists see cutting emissions as the only lasting fix.",
    ),
    (
        "Remote work became widespread during the pandemic and has remained popular with many office workers. "
        "Employees value the time saved on commuting and the flexibility to manage family responsibilities. "
        "Managers, however, worry about weaker team relationships, slower onboarding of new staff and fewer "
        "chances for informal learning. As a result, many organisations have settled on hybrid arrangements in "
        "which staff spend two or three days a week in the office.",
        "Remote work stayed popular after the pandemic because it saves commuting time and adds flexibility. "
        "Managers worry about team bonds, onboarding and informal learning, so many employers now use hybrid "
        "schedules with two or three office days a week.",
    ),
]


RECIPES = [  # dish, serves, ingredients, steps, tip
    (
        "a simple tomato pasta sauce",
        4,
        [
            "2 tablespoons olive oil",
            "1 onion, finely chopped",
            "3 garlic cloves, sliced",
            "2 cans (400 g each) chopped tomatoes",
            "1 teaspoon sugar",
            "salt, pepper and fresh basil",
        ],
        [
            "Soften the onion in the oil over medium heat for 8 minutes.",
            "Add the garlic and cook for 1 minute.",
            "Stir in the tomatoes and sugar, then simmer for 20 minutes until thick.",
            "Season and tear in the basil.",
        ],
        "A knob of butter stirred in at the end makes the sauce silkier.",
    ),
    (
        "banana bread",
        8,
        [
            "3 very ripe bananas",
            "75 g melted butter",
            "150 g sugar",
            "1 egg, beaten",
            "1 teaspoon baking soda",
            "a pinch of salt",
            "190 g plain flour",
        ],
        [
            "Heat the oven to 175 C and grease a loaf tin.",
            "Mash the bananas and mix in the butter, sugar and egg.",
            "Stir in the baking soda and salt, then fold in the flour until just combined.",
            "Bake for 55 to 65 minutes, until a skewer comes out clean.",
        ],
        "The blacker the bananas, the sweeter and moister the loaf.",
    ),
    (
        "a vegetable stir-fry",
        2,
        [
            "1 tablespoon neutral oil",
            "1 red pepper, sliced",
            "1 carrot, cut into thin sticks",
            "a handful of snap peas",
            "2 spring onions",
            "2 tablespoons soy sauce",
            "1 teaspoon grated ginger",
        ],
        [
            "Heat the oil in a wok until it shimmers.",
            "Add the carrot and cook for 2 minutes, then add the pepper and peas.",
            "Toss for another 2 minutes so the vegetables stay crisp.",
            "Add the ginger, soy sauce and spring onions and serve with rice.",
        ],
        "Cut everything before you start; stir-frying moves too fast to chop as you go.",
    ),
    (
        "fluffy pancakes",
        4,
        [
            "200 g plain flour",
            "2 teaspoons baking powder",
            "1 tablespoon sugar",
            "a pinch of salt",
            "1 egg",
            "300 ml milk",
            "2 tablespoons melted butter",
        ],
        [
            "Whisk the dry ingredients in a bowl.",
            "Beat the egg with the milk and butter, then pour into the flour.",
            "Stir just until no dry flour remains; a few lumps are fine.",
            "Cook ladlefuls in a lightly oiled pan until bubbles appear, then flip for 1 minute.",
        ],
        "Letting the batter rest for ten minutes gives taller pancakes.",
    ),
    (
        "a lentil soup",
        6,
        [
            "1 onion",
            "2 carrots",
            "2 celery sticks",
            "2 tablespoons olive oil",
            "250 g red lentils",
            "1.5 litres vegetable stock",
            "1 teaspoon ground cumin",
            "juice of half a lemon",
        ],
        [
            "Dice the vegetables and soften them in the oil for 10 minutes.",
            "Add the cumin and cook for 30 seconds.",
            "Add the rinsed lentils and stock and simmer for 25 minutes.",
            "Blend partly, then season and add the lemon juice.",
        ],
        "The soup thickens as it stands, so add a splash of water when reheating.",
    ),
    (
        "guacamole",
        4,
        [
            "3 ripe avocados",
            "1 lime",
            "half a small red onion, finely diced",
            "1 tomato, seeded and diced",
            "a handful of coriander",
            "1 small chilli (optional)",
            "salt",
        ],
        [
            "Halve the avocados, remove the stones and scoop the flesh into a bowl.",
            "Mash with a fork, leaving some texture.",
            "Stir in the lime juice, onion, tomato, chopped coriander and chilli.",
            "Season with salt and taste for balance.",
        ],
        "Press cling film onto the surface to stop it browning if you make it ahead.",
    ),
    (
        "overnight oats",
        1,
        [
            "50 g rolled oats",
            "120 ml milk or plant milk",
            "2 tablespoons yogurt",
            "1 teaspoon honey",
            "1 tablespoon chia seeds",
            "a handful of berries",
        ],
        [
            "Mix the oats, milk, yogurt, honey and chia seeds in a jar.",
            "Cover and refrigerate overnight, or at least 4 hours.",
            "In the morning, stir and add a little more milk if it is too thick.",
            "Top with the berries and eat cold.",
        ],
        "Grated apple and cinnamon make a good autumn variation.",
    ),
    (
        "a classic omelette",
        1,
        [
            "3 eggs",
            "1 tablespoon butter",
            "salt and pepper",
            "a small handful of grated cheese",
            "chopped chives",
        ],
        [
            "Beat the eggs with a pinch of salt until no streaks of white remain.",
            "Melt the butter in a non-stick pan over medium heat.",
            "Pour in the eggs and stir gently with a spatula until softly set, then stop stirring.",
            "Add the cheese and chives, fold the omelette in half and slide it onto a plate.",
        ],
        "Take it off the heat while the top still looks slightly wet; it keeps cooking.",
    ),
]


TRAVEL = [  # destination, tips
    (
        "Lisbon",
        [
            "Wear comfortable shoes: the city is built on seven hills and the pavements are slippery limestone.",
            "Buy a rechargeable Viva Viagem card for trams, buses, the metro and the ferry across the Tagus.",
            "Ride tram 28 early in the morning, before the queues, or walk the route through Alfama instead.",
            "Take a day trip to Sintra by train from Rossio station, about 40 minutes.",
        ],
    ),
    (
        "Tokyo",
        [
            "Get a Suica or Pasmo card for trains, buses and even convenience stores.",
            "Trains stop around midnight, so plan the last ride home.",
            "Carry some cash; smaller restaurants may not take cards.",
            "Visit popular shrines like Meiji Jingu early to avoid crowds.",
            "Tipping is not expected and can cause confusion.",
        ],
    ),
    (
        "Iceland in winter",
        [
            "Rent a four-wheel-drive car and check road.is every morning for closures.",
            "Daylight is only four to five hours in December, so plan drives around it.",
            "Pack waterproof layers, crampons for icy paths and a good hat.",
            "Check the aurora forecast on the Icelandic Met Office website for clear, dark nights.",
        ],
    ),
    (
        "New York City",
        [
            "The subway runs 24 hours and you can tap a contactless card at the turnstile.",
            "Book popular museums and observation decks online to skip ticket lines.",
            "Walk the High Line and cross the Brooklyn Bridge on foot for free views.",
            "Tip 18 to 20 percent in restaurants; it is a real part of the staff's pay.",
        ],
    ),
    (
        "Rome",
        [
            "Book the Vatican Museums and the Colosseum in advance for a timed entry.",
            "Cover shoulders and knees for churches, including St Peter's Basilica.",
            "Drink from the free nasoni fountains around the city.",
            "Eat away from the main sights; a street or two back, prices drop and quality rises.",
        ],
    ),
    (
        "Morocco",
        [
            "Dress modestly, especially outside the big cities.",
            "Agree on a taxi fare before you get in, or ask for the meter.",
            "Bargaining in the souks is expected; start at around half the first price.",
            "Stay in a riad in the medina for a quiet courtyard in the middle of the bustle.",
            "Carry small change for tips and snacks.",
        ],
    ),
    (
        "the Scottish Highlands",
        [
            "Midges are fierce from June to August, so bring repellent.",
            "Many roads are single-track; pull into passing places to let others by.",
            "Weather changes fast, so pack waterproofs even in summer.",
            "Book accommodation on Skye well ahead in high season.",
        ],
    ),
    (
        "Mexico City",
        [
            "The city is at 2,240 metres, so take it easy on your first day and drink plenty of water.",
            "Use ride-hailing apps or official taxi stands rather than hailing cabs on the street.",
            "Visit Teotihuacan early, before the midday heat.",
            "Street food is a highlight; pick busy stalls with high turnover.",
        ],
    ),
    (
        "Singapore",
        [
            "The MRT is clean, cheap and goes almost everywhere; tap a contactless card.",
            "Eating, drinking and chewing gum are not allowed on trains.",
            "Hawker centres such as Maxwell and Lau Pa Sat serve excellent meals for a few dollars.",
            "Carry an umbrella for sudden tropical downpours.",
        ],
    ),
    (
        "Barcelona",
        [
            "Book the Sagrada Familia and Park Guell online; they sell out days ahead.",
            "Watch for pickpockets on Las Ramblas and in the metro.",
            "Dinner starts late, usually after 9 pm.",
            "Get a T-casual ticket for ten rides on the metro and buses.",
        ],
    ),
]


BRAINSTORM = [  # request, items
    (
        "Give me ideas for a 10-year-old's birthday party at home.",
        [
            "A backyard treasure hunt with riddles leading to the cake",
            "A DIY pizza station where each guest makes their own",
            "A movie night with a projector, blankets and popcorn",
            "A science party with slime and baking-soda volcanoes",
            "A mini Olympics with sack races and an egg-and-spoon race",
        ],
    ),
    (
        "Brainstorm names for a small coffee shop near a university.",
        [
            "The Study Break",
            "Footnote Coffee",
            "Bean There",
            "Late Shift Espresso",
            "The Quiet Corner",
            "Thesis & Toast",
        ],
    ),
    (
        "What are some low-cost ways to reduce my household energy bill?",
        [
            "Switch to LED bulbs, which use about 80 percent less electricity",
            "Lower the thermostat by one degree",
            "Seal draughts around doors and windows with cheap strips",
            "Run the washing machine full and at 30 degrees",
            "Turn devices off at the wall instead of leaving them on standby",
            "Dry clothes outside when the weather allows",
        ],
    ),
    (
        "Suggest some team-building activities for a remote team.",
        [
            "A weekly 15-minute coffee chat with random pairings",
            "An online escape room",
            "A show-and-tell where each person shares a hobby",
            "A shared playlist built by the whole team",
            "A virtual cooking class with ingredients posted in advance",
        ],
    ),
    (
        "Give me blog post ideas for a gardening website.",
        [
            "Ten vegetables you can grow on a balcony",
            "How to start a compost heap in a small garden",
            "A month-by-month planting calendar for beginners",
            "Attracting bees and butterflies with native flowers",
            "Common tomato problems and how to fix them",
        ],
    ),
    (
        "What are some good habits for studying more effectively?",
        [
            "Test yourself with flashcards instead of rereading notes",
            "Space your study sessions over several days",
            "Work in 25-minute focused blocks with short breaks",
            "Explain a topic out loud as if teaching it",
            "Put your phone in another room",
            "Sleep well before exams; memory consolidates during sleep",
        ],
    ),
    (
        "Brainstorm fundraising ideas for a school library.",
        [
            "A used-book sale with donated books",
            "A sponsored read-a-thon",
            "A bake sale at parents' evening",
            "A quiz night for families",
            "Selling bookmarks designed by students",
            "Asking local businesses to sponsor a shelf",
        ],
    ),
    (
        "Give me ideas for healthy snacks I can take to work.",
        [
            "Hummus with carrot and cucumber sticks",
            "A handful of unsalted almonds",
            "Greek yogurt with berries",
            "Apple slices with peanut butter",
            "Roasted chickpeas",
            "Hard-boiled eggs",
        ],
    ),
    (
        "Suggest weekend activities for a rainy day with kids.",
        [
            "Build a blanket fort and read stories inside it",
            "Bake and decorate biscuits",
            "Make a board game out of cardboard",
            "Visit a local museum or indoor swimming pool",
            "Put on a puppet show with socks",
        ],
    ),
    (
        "What are some ways to practise a new language every day?",
        [
            "Change your phone's language setting",
            "Listen to podcasts for learners on your commute",
            "Write three sentences in a journal each evening",
            "Find a conversation partner on a language exchange app",
            "Watch series with subtitles in the target language",
            "Label objects around your home",
        ],
    ),
]


EMAIL_KINDS = {  # purpose -> (request template, subject, body paragraphs as lists of alternatives)
    "reschedule": (
        "Write an email to {to} asking to move our {thing} from {day1} to {day2}.",
        "Request to reschedule our {thing}",
        [
            [
                "I hope your week is going well.",
                "Thanks again for making time for our {thing}.",
                "I'm writing about the {thing} we have in the calendar.",
            ],
            [
                "Unfortunately something has come up on {day1}, and I won't be able to attend as planned.",
                "A conflicting commitment has landed on {day1}, so I need to ask for a change.",
                "I've just been told I have to travel on {day1}, which clashes with our {thing}.",
            ],
            [
                "Would {day2} work for you instead? I'm flexible on the time.",
                "Could we move it to {day2}? Any time after 10 am suits me.",
                "I'm free all of {day2}; if that doesn't suit you, please suggest another slot.",
            ],
            [
                "Sorry for the inconvenience, and thank you for understanding.",
                "I appreciate your flexibility and apologise for the short notice.",
            ],
        ],
    ),
    "thanks": (
        "Draft a thank-you email to {to} for helping with the {thing}.",
        "Thank you for your help with the {thing}",
        [
            [
                "I wanted to say a proper thank you for your help with the {thing}.",
                "I couldn't let the week end without thanking you for the {thing}.",
                "Now that the {thing} is behind us, I wanted to tell you how much your help meant.",
            ],
            [
                "Your advice saved me hours, and the result is much better than it would have been.",
                "You spotted problems I had completely missed, and it made a real difference.",
                "Giving up your {day1} evening to help was generous, and everyone noticed.",
            ],
            [
                "Several people have already told me how smoothly it went.",
                "I learned a lot just watching how you work.",
                "It would have taken me twice as long on my own.",
            ],
            [
                "If I can ever return the favour, please let me know.",
                "Next coffee is on me.",
                "Let me buy you lunch one day next week.",
            ],
        ],
    ),
    "followup": (
        "Write a polite follow-up email to {to} about the {thing} I sent on {day1}.",
        "Following up on the {thing}",
        [
            [
                "I'm following up on the {thing} I sent over on {day1}.",
                "I wanted to check in about the {thing} from {day1}.",
                "Just a gentle reminder about the {thing} I emailed you on {day1}.",
            ],
            [
                "I know things get busy, so no pressure, but I'd be grateful for your thoughts when you have a moment.",
                "We're hoping to finalise it by {day2}, so any feedback before then would be very helpful.",
            ],
            [
                "Happy to jump on a quick call if that's easier.",
                "Let me know if anything is unclear.",
                "If someone else on your team handles this now, could you point me to them?",
            ],
        ],
    ),
    "leave": (
        "Write an email to my manager {to} requesting leave from {day1} to {day2}.",
        "Leave request: {day1} to {day2}",
        [
            [
                "I'd like to request annual leave from {day1} to {day2}.",
                "I'm writing to ask for time off between {day1} and {day2}.",
                "I'm planning a family trip and would like to take {day1} to {day2} off.",
            ],
            [
                "Before I go I'll finish the {thing} and brief the team on anything outstanding.",
                "I'll make sure the {thing} is handed over properly and my out-of-office reply is on.",
            ],
            [
                "Please let me know if these dates cause any problems.",
                "Thanks for considering it.",
                "I've checked the team calendar and nobody else is away that week.",
            ],
        ],
    ),
    "complaint": (
        "Help me write a complaint email to {to} about a faulty {thing}.",
        "Faulty {thing}, order received on {day1}",
        [
            [
                "I'm writing about the {thing} I received on {day1}.",
                "On {day1} I received a {thing} from your store.",
            ],
            [
                "Unfortunately it stopped working after two days, even though I followed the instructions.",
                "It arrived damaged and does not switch on.",
                "It makes a loud rattling noise and the power light keeps flashing.",
            ],
            [
                "I'd like a replacement or a full refund. I have attached photos and the receipt.",
                "Could you arrange a return and refund? The order confirmation is attached.",
            ],
            ["I look forward to hearing from you by {day2}.", "Thank you for your help in resolving this."],
        ],
    ),
    "invite": (
        "Write a short email inviting {to} to our {thing} on {day1}.",
        "Invitation: {thing} on {day1}",
        [
            [
                "We're holding a {thing} on {day1} and I'd love for you to join us.",
                "I'm delighted to invite you to our {thing} on {day1}.",
                "Would you like to come to the {thing} we're organising for {day1}?",
            ],
            [
                "It starts at 6 pm in the main hall, and food and drinks will be provided.",
                "We'll meet at the café on the ground floor at noon; it should take about two hours.",
                "There will be a short talk, followed by plenty of time to chat.",
            ],
            [
                "Please let me know by {day2} so we can plan numbers.",
                "Feel free to bring a colleague.",
                "Reply to this email to confirm your place.",
            ],
        ],
    ),
    "intro": (
        "Write an email introducing myself to {to}, my new {thing} contact.",
        "Introduction from your new {thing} contact",
        [
            [
                "I've just taken over as your main contact for {thing} matters, and I wanted to introduce myself.",
                "I recently joined the {thing} team, and from {day1} I'll be your point of contact.",
                "As of {day1}, I'm looking after everything related to your {thing}.",
            ],
            [
                "I've read through the notes from your previous meetings, so you won't need to repeat anything.",
                "My background is in operations, and I've worked with clients like you for six years.",
                "Before joining, I spent several years on the customer side, so I know how frustrating delays can be.",
            ],
            [
                "Could we have a short call on {day2} to get to know each other?",
                "I'd welcome fifteen minutes on {day2} to hear your priorities.",
                "When would suit you for a brief introductory chat?",
            ],
        ],
    ),
}


EMAIL_FILL = {
    "to": [
        "Sarah",
        "Mr. Patel",
        "Dr. Okafor",
        "Jamie",
        "Ms. Lindqvist",
        "Carlos",
        "the support team",
        "Professor Wong",
    ],
    "thing": {
        "reschedule": ["meeting", "interview", "call", "project review"],
        "thanks": ["presentation", "move", "grant application", "website launch"],
        "followup": ["proposal", "invoice", "draft contract", "job application"],
        "leave": ["quarterly report", "client handover", "budget review", "migration plan"],
        "complaint": ["coffee machine", "vacuum cleaner", "pair of headphones", "desk lamp"],
        "invite": ["summer picnic", "book launch", "open day", "farewell lunch for Tom"],
        "intro": ["billing", "account", "logistics", "payroll"],
    },
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "date": [
        "3 March",
        "14 March",
        "2 April",
        "19 May",
        "3 June",
        "12 July",
        "28 August",
        "9 October",
        "20 November",
    ],
}


CODE_TASKS = [  # entry point, request, reference solution, tests
    (
        "add",
        "Write a Python function `add(a, b)` that returns the sum of two numbers.",
        "def add(a, b):\n    return a + b",
        ["add(2, 3) == 5", "add(-1, 1) == 0", "add(0.5, 0.25) == 0.75"],
    ),
    (
        "is_palindrome",
        "Write `is_palindrome(s)` that returns True if the string reads the same backwards, ignoring case "
        "and non-alphanumeric characters.",
        "def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]",
        [
            "is_palindrome('Racecar') is True",
            "is_palindrome('A man, a plan, a canal: Panama') is True",
            "is_palindrome('hello') is False",
            "is_palindrome('') is True",
        ],
    ),
    (
        "fizzbuzz",
        "Write `fizzbuzz(n)` returning a list of strings for 1..n: 'Fizz' for multiples of 3, 'Buzz' for "
        "multiples of 5, 'FizzBuzz' for both, otherwise the number as a string.",
        "def fizzbuzz(n):\n    return ['FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 "
        "else str(i) for i in range(1, n + 1)]",
        [
            "fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']",
            "fizzbuzz(15)[-1] == 'FizzBuzz'",
            "fizzbuzz(0) == []",
        ],
    ),
    (
        "count_vowels",
        "Write `count_vowels(s)` that returns how many vowels (a, e, i, o, u, either case) a string contains.",
        "def count_vowels(s):\n    return sum(c in 'aeiouAEIOU' for c in s)",
        ["count_vowels('hello') == 2", "count_vowels('RHYTHM') == 0", "count_vowels('AEIOU aeiou') == 10"],
    ),
    (
        "factorial",
        "Write `factorial(n)` that returns n! for a non-negative integer n.",
        "def factorial(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out",
        ["factorial(0) == 1", "factorial(5) == 120", "factorial(10) == 3628800"],
    ),
    (
        "second_largest",
        "Write `second_largest(nums)` that returns the second largest distinct value in a list, or None "
        "if there is none.",
        "def second_largest(nums):\n    vals = sorted(set(nums))\n    return vals[-2] if len(vals) >= 2 else None",
        [
            "second_largest([4, 1, 7, 7, 3]) == 4",
            "second_largest([5, 5]) is None",
            "second_largest([-2, -8]) == -8",
        ],
    ),
    (
        "word_count",
        "Write `word_count(text)` that returns a dict mapping each lower-cased word to how often it occurs. "
        "Words are separated by whitespace.",
        "def word_count(text):\n    out = {}\n    for w in text.lower().split():\n        out[w] = out.get(w, 0) + 1\n    return out",
        [
            "word_count('a b a') == {'a': 2, 'b': 1}",
            "word_count('') == {}",
            "word_count('The the THE') == {'the': 3}",
        ],
    ),
    (
        "celsius_to_fahrenheit",
        "Write `celsius_to_fahrenheit(c)` that converts a temperature from Celsius to Fahrenheit.",
        "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32",
        [
            "celsius_to_fahrenheit(0) == 32",
            "celsius_to_fahrenheit(100) == 212",
            "celsius_to_fahrenheit(-40) == -40",
        ],
    ),
    (
        "reverse_words",
        "Write `reverse_words(s)` that reverses the order of the words in a sentence, joining them with "
        "single spaces.",
        "def reverse_words(s):\n    return ' '.join(reversed(s.split()))",
        [
            "reverse_words('hello big world') == 'world big hello'",
            "reverse_words('  one  ') == 'one'",
            "reverse_words('') == ''",
        ],
    ),
    (
        "is_prime",
        "Write `is_prime(n)` that returns True if n is a prime number.",
        "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
        "            return False\n        i += 1\n    return True",
        ["is_prime(2) is True", "is_prime(1) is False", "is_prime(97) is True", "is_prime(91) is False"],
    ),
    (
        "flatten",
        "Write `flatten(items)` that flattens a list of lists of any depth into a single list.",
        "def flatten(items):\n    out = []\n    for x in items:\n        out.extend(flatten(x) if isinstance(x, list) else [x])\n    return out",
        ["flatten([1, [2, [3, [4]]]]) == [1, 2, 3, 4]", "flatten([]) == []", "flatten([[], [5]]) == [5]"],
    ),
    (
        "gcd",
        "Write `gcd(a, b)` that returns the greatest common divisor of two positive integers without using math.gcd.",
        "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a",
        ["gcd(12, 18) == 6", "gcd(17, 5) == 1", "gcd(100, 10) == 10"],
    ),
    (
        "run_length_encode",
        "Write `run_length_encode(s)` that compresses runs of repeated characters, e.g. 'aaabcc' -> "
        "'a3b1c2'.",
        "def run_length_encode(s):\n    out = []\n    for c in s:\n        if out and out[-1][0] == c:\n            out[-1][1] += 1\n"
        "        else:\n            out.append([c, 1])\n    return ''.join(f'{c}{n}' for c, n in out)",
        [
            "run_length_encode('aaabcc') == 'a3b1c2'",
            "run_length_encode('') == ''",
            "run_length_encode('x') == 'x1'",
        ],
    ),
    (
        "merge_sorted",
        "Write `merge_sorted(a, b)` that merges two sorted lists into one sorted list.",
        "def merge_sorted(a, b):\n    i = j = 0\n    out = []\n    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n"
        "            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]",
        [
            "merge_sorted([1, 4, 6], [2, 3, 7]) == [1, 2, 3, 4, 6, 7]",
            "merge_sorted([], [1]) == [1]",
            "merge_sorted([2], []) == [2]",
        ],
    ),
    (
        "anagrams",
        "Write `anagrams(a, b)` that returns True if two words are anagrams of each other, ignoring case.",
        "def anagrams(a, b):\n    return sorted(a.lower()) == sorted(b.lower())",
        [
            "anagrams('Listen', 'Silent') is True",
            "anagrams('apple', 'paper') is False",
            "anagrams('', '') is True",
        ],
    ),
    (
        "chunk",
        "Write `chunk(items, size)` that splits a list into consecutive lists of at most `size` items.",
        "def chunk(items, size):\n    return [items[i:i + size] for i in range(0, len(items), size)]",
        [
            "chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]",
            "chunk([], 3) == []",
            "chunk([1, 2], 5) == [[1, 2]]",
        ],
    ),
    (
        "digit_sum",
        "Write `digit_sum(n)` that returns the sum of the decimal digits of a non-negative integer.",
        "def digit_sum(n):\n    return sum(int(d) for d in str(n))",
        ["digit_sum(0) == 0", "digit_sum(1234) == 10", "digit_sum(999) == 27"],
    ),
    (
        "title_case",
        "Write `title_case(s)` that capitalizes the first letter of every word and lower-cases the rest.",
        "def title_case(s):\n    return ' '.join(w[:1].upper() + w[1:].lower() for w in s.split(' '))",
        ["title_case('hello WORLD') == 'Hello World'", "title_case('a') == 'A'", "title_case('') == ''"],
    ),
    (
        "median",
        "Write `median(nums)` that returns the median of a non-empty list of numbers.",
        "def median(nums):\n    s = sorted(nums)\n    n = len(s)\n    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2",
        ["median([3, 1, 2]) == 2", "median([4, 1, 3, 2]) == 2.5", "median([7]) == 7"],
    ),
    (
        "roman_to_int",
        "Write `roman_to_int(s)` that converts a Roman numeral such as 'XIV' to an integer.",
        "def roman_to_int(s):\n    v = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n    total = 0\n"
        "    for a, b in zip(s, s[1:] + ' '):\n        total += -v[a] if b != ' ' and v[a] < v[b] else v[a]\n    return total",
        ["roman_to_int('XIV') == 14", "roman_to_int('MCMXCIV') == 1994", "roman_to_int('III') == 3"],
    ),
]


FACTS = [  # question, correct answer, wrong answer
    (
        "What is the capital of Canada?",
        "The capital of Canada is Ottawa, in the province of Ontario. Many people guess "
        "Toronto, which is the largest city, but Ottawa was chosen as the capital in 1857.",
        "The capital of Canada is Toronto, the country's largest city.",
    ),
    (
        "How many bones are in the adult human body?",
        "An adult human skeleton has 206 bones. Babies are born with "
        "around 270, and many of them fuse together as the body grows.",
        "The adult human body has 312 bones.",
    ),
    (
        "Who wrote 'Pride and Prejudice'?",
        "Jane Austen wrote Pride and Prejudice. It was published in 1813 and follows "
        "Elizabeth Bennet and Mr Darcy.",
        "Pride and Prejudice was written by Charlotte Brontë in 1847.",
    ),
    (
        "What is the boiling point of water at sea level in Fahrenheit?",
        "Water boils at 212 degrees Fahrenheit (100 "
        "degrees Celsius) at sea level. At higher altitudes it boils at a lower temperature because air pressure is lower.",
        "Water boils at 100 degrees Fahrenheit at sea level.",
    ),
    (
        "Which planet is closest to the Sun?",
        "Mercury is the closest planet to the Sun, orbiting at an average distance "
        "of about 58 million kilometres. A year there lasts only 88 Earth days.",
        "Venus is the closest planet to the Sun.",
    ),
    (
        "In what year did humans first land on the Moon?",
        "Humans first landed on the Moon on 20 July 1969, during NASA's "
        "Apollo 11 mission. Neil Armstrong and Buzz Aldrin walked on the surface while Michael Collins orbited above.",
        "The first Moon landing was in 1972 with Apollo 17.",
    ),
]
