"""A deterministic synthetic movie CRS: the embedded default dataset (small, instant, learnable).

The catalog has a few hundred movies, each with genres, a director, actors and a year. In a dialogue the user states
a preference (a genre, optionally with a director or actor they like, or a movie they liked); the assistant recommends
movies that match it, sometimes asks first or only chats. A model that reads the preference narrows the catalog to a
handful of candidates, so it beats popularity by far; popularity still carries some signal (items have a Zipf prior).
"""

import random

from gencrs.data.schema import Dataset, Dialogue, Item, Turn
from gencrs.format import mention

GENRES = ["action", "comedy", "drama", "horror", "romance", "thriller", "sci-fi", "animation", "documentary", "western", "fantasy", "mystery"]
ADJECTIVES = ["Silent", "Crimson", "Broken", "Hidden", "Last", "Golden", "Midnight", "Frozen", "Wild", "Lost", "Burning",
              "Electric", "Hollow", "Distant", "Savage", "Quiet", "Iron", "Velvet", "Shattered", "Endless", "Secret",
              "Bright", "Dark", "Lonely", "Restless", "Final", "Scarlet", "Wandering", "Fallen", "Sacred"]
# A title's noun comes from its main genre, as real titles often tell their genre ("The Last Haunting"): with neutral
# nouns the item texts' embeddings grouped by names and titles, and the first semantic-ID level matched the main genre
# for 58% of items (k-means purity); with these it is about 90%, so the first code is what the user asks for.
GENRE_NOUNS = {
    "action": ["Bullet", "Strike", "Mission", "Showdown", "Assault", "Pursuit", "Gunfire", "Explosion"],
    "comedy": ["Wedding", "Vacation", "Roommates", "Prank", "Party", "Mixup", "Neighbors", "Road Trip"],
    "drama": ["Family", "Letters", "Goodbye", "Inheritance", "Silence", "Homecoming", "Promise", "Memory"],
    "horror": ["Haunting", "Curse", "Ghost", "Nightmare", "Crypt", "Demon", "Possession", "Slaughter"],
    "romance": ["Love", "Kiss", "Heart", "Valentine", "Romance", "Sweetheart", "Honeymoon", "Desire"],
    "thriller": ["Conspiracy", "Witness", "Suspect", "Deception", "Hostage", "Killer", "Alibi", "Betrayal"],
    "sci-fi": ["Galaxy", "Android", "Starship", "Alien", "Planet", "Robot", "Orbit", "Cyborg"],
    "animation": ["Bunny", "Puppy", "Dragonling", "Penguin", "Kitten", "Teddy", "Toybox", "Panda"],
    "documentary": ["Truth", "Archive", "Chronicle", "Investigation", "History", "Report", "Testimony", "Record"],
    "western": ["Outlaw", "Saloon", "Sheriff", "Cowboy", "Stagecoach", "Ranch", "Gunslinger", "Prairie"],
    "fantasy": ["Wizard", "Dragon", "Sorcerer", "Enchantment", "Kingdom", "Elf", "Spellbook", "Unicorn"],
    "mystery": ["Clue", "Riddle", "Whodunit", "Detective", "Puzzle", "Secret", "Enigma", "Mystery"],
}
FIRST = ["Ava", "Ben", "Clara", "Dev", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonah", "Kira", "Leo", "Maya", "Nico",
         "Olive", "Paul", "Quinn", "Rosa", "Sam", "Tara"]
LAST = ["Stone", "Rivera", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Bishop", "Kowalski", "Navarro", "Hale", "Park",
        "Mendes", "Ivanova", "Byrne", "Costa"]

# Plots read like their genre, as real plots do, and are long enough next to the title and names that text
# embeddings of items group by genre (with one sentence they did not: k-means genre purity of the embeddings 0.30, now 0.59).
GENRE_PLOTS = {
    "action": ["Explosive action with car chases, gunfights and a hero racing against time.",
               "A lone fighter takes on an army of mercenaries in a string of stunts and shootouts.",
               "Bullets fly and buildings explode as the hero battles to stop a deadly attack."],
    "comedy": ["A laugh-out-loud comedy full of jokes, pranks and hilarious misunderstandings.",
               "A clumsy hero stumbles from one ridiculous situation to the next in this funny farce.",
               "Silly gags, witty banter and slapstick chaos keep the laughs coming."],
    "drama": ["A moving drama about family, grief and difficult choices.",
              "An emotional story of a family torn apart by loss, secrets and regret.",
              "Quiet, heartfelt performances explore love, pain and forgiveness."],
    "horror": ["A terrifying horror film with ghosts, blood and a haunted house.",
               "A demonic presence stalks a family through dark hallways and screams in the night.",
               "Gruesome deaths and a monster in the shadows bring pure fear and dread."],
    "romance": ["A romantic love story of two people falling in love.",
                "Two strangers meet, flirt and slowly fall for each other despite everything.",
                "A tender romance of kisses, heartbreak and a wedding at the end."],
    "thriller": ["A tense suspense thriller with a killer, a detective and a twist.",
                 "A detective hunts a cunning serial killer in a race full of suspense and danger.",
                 "Paranoia, conspiracy and a shocking twist keep the tension high."],
    "sci-fi": ["A science fiction adventure with spaceships, aliens and robots in the future.",
               "Astronauts travel across the galaxy and meet an alien civilization.",
               "Advanced technology, time travel and artificial intelligence shape a futuristic world."],
    "animation": ["An animated family cartoon with talking animals for kids.",
                  "Colorful cartoon characters sing songs on a magical adventure for children.",
                  "A cute animated animal makes friends in a fun film for the whole family."],
    "documentary": ["A documentary with real interviews and true history.",
                    "Real people tell their true stories through archive footage and interviews.",
                    "This nonfiction film investigates real events, facts and history."],
    "western": ["A western with cowboys, horses and outlaws in the wild west.",
                "A gunslinger rides into a dusty frontier town to face a gang of bandits.",
                "Sheriffs, saloons and showdowns at high noon on the open prairie."],
    "fantasy": ["A fantasy epic with wizards, dragons and magic kingdoms.",
                "A young hero with magical powers goes on a quest against an evil sorcerer.",
                "Elves, enchanted swords and ancient spells fill a mythical realm."],
    "mystery": ["A mystery whodunit with clues, secrets and a puzzling crime.",
                "An amateur sleuth follows clues to solve a baffling murder in a country manor.",
                "Suspects, alibis and hidden secrets lead to a surprising solution."],
}
N_ITEMS, N_DIRECTORS, N_ACTORS = 300, 30, 60
SPLIT_SIZES = {"train": 1200, "valid": 150, "test": 150}


def make_catalog(rng: random.Random) -> dict[str, Item]:
    people = rng.sample([f"{f} {l}" for f in FIRST for l in LAST], N_DIRECTORS + N_ACTORS)
    directors, actors = people[:N_DIRECTORS], people[N_DIRECTORS:]
    catalog, titles = {}, set()
    for i in range(N_ITEMS):
        # each director works mostly in one or two genres, which ties people to genres
        director = rng.choice(directors)
        home = GENRES[directors.index(director) % len(GENRES)]
        genres = [home] + ([rng.choice(GENRES)] if rng.random() < 0.4 else [])
        title = rng.choice(sorted({f"The {a} {n}" for a in ADJECTIVES for n in GENRE_NOUNS[home]} - titles))
        titles.add(title)
        catalog[f"m{i:03d}"] = Item(
            id=f"m{i:03d}", title=title, year=rng.randint(1970, 2023), genres=list(dict.fromkeys(genres)),
            directors=[director], actors=rng.sample(actors, 2),
            plot=" ".join([*GENRE_PLOTS[genres[0]], *GENRE_PLOTS[genres[-1]][:1]]),
        )
    return catalog


class _Writer:
    """Writes one dialogue; the preference decides which items are acceptable recommendations."""

    def __init__(self, rng: random.Random, catalog: dict[str, Item], popularity: dict[str, float]):
        self.rng, self.catalog, self.popularity = rng, catalog, popularity

    def pick(self, candidates: list[str], exclude: set[str]) -> str | None:
        pool = [c for c in candidates if c not in exclude]
        if not pool:
            return None
        return self.rng.choices(pool, weights=[self.popularity[c] for c in pool])[0]

    def dialogue(self, dialogue_id: str) -> Dialogue:
        rng, catalog = self.rng, self.catalog
        turns: list[Turn] = []
        mentioned: set[str] = set()

        def say(role, text, items=()):
            turns.append(Turn(role=role, text=text, items=list(dict.fromkeys(items))))
            mentioned.update(items)

        genre = rng.choice(GENRES)
        in_genre = [i for i, it in catalog.items() if genre in it.genres]
        liked = rng.choice(in_genre)
        candidates = in_genre
        if rng.random() < 0.5:
            say("assistant", rng.choice(["Hi! What kind of movies are you in the mood for?", "Hello! What do you like to watch?"]))
        else:
            say("user", rng.choice(["Hi, I need a movie for tonight.", "Hello! Can you help me find a movie?"]))
            say("assistant", rng.choice(["Sure! What genres do you enjoy?", "Of course. What have you liked recently?"]))
        style = rng.random()
        if style < 0.35:
            director = catalog[liked].directors[0]
            candidates = [i for i in in_genre if director in catalog[i].directors] or in_genre
            say("user", f"I love {genre} movies, especially the ones by {director}.")
        elif style < 0.7:
            say("user", f"I recently watched {mention(liked)} and loved it. Anything like that?", [liked])
            director = catalog[liked].directors[0]
            candidates = [i for i in in_genre if director in catalog[i].directors] or in_genre
        else:
            actor = rng.choice(catalog[liked].actors)
            candidates = [i for i in in_genre if actor in catalog[i].actors] or in_genre
            say("user", f"I'm in the mood for some {genre}. I like {actor} a lot.")
        if rng.random() < 0.25:
            say("assistant", rng.choice(["Do you prefer something recent or a classic?", "Are you watching alone or with friends?"]))
            say("user", rng.choice(["Either is fine.", "Doesn't matter much.", "Surprise me."]))
        for round_ in range(rng.choice([1, 1, 2, 3])):
            pick = self.pick(candidates, mentioned) or self.pick(in_genre, mentioned)
            if pick is None:
                break
            item = catalog[pick]
            say("assistant", rng.choice([
                f"You might enjoy {mention(pick)}. It is a {item.genres[0]} film by {item.directors[0]}.",
                f"Have you seen {mention(pick)}? It stars {item.actors[0]}.",
                f"I'd recommend {mention(pick)}.",
            ]), [pick])
            reply = rng.random()
            if reply < 0.35:
                say("user", f"What is {mention(pick)} about?", [pick])
                say("assistant", f"{mention(pick)} is a {item.genres[0]} movie from {item.year} with {item.actors[0]} and {item.actors[1]}.", [pick])
                say("user", rng.choice(["Sounds great, thanks!", "I'll give it a try."]))
                break
            if reply < 0.7:
                say("user", rng.choice(["I've seen that one already. Something else?", "Not that one. Any other ideas?"]))
                continue
            say("user", rng.choice(["Perfect, I'll watch it.", "Great, thank you!"]))
            break
        say("assistant", rng.choice(["Enjoy the movie!", "Have a good night!", "You're welcome, enjoy!"]))
        return Dialogue(id=dialogue_id, turns=turns, source=f"synthetic:{dialogue_id}")


def load_synthetic(seed: int = 0, sizes: dict[str, int] | None = None) -> Dataset:
    rng = random.Random(seed)
    catalog = make_catalog(rng)
    popularity = {item_id: 1.0 / (rank + 1) ** 0.8 for rank, item_id in enumerate(rng.sample(list(catalog), len(catalog)))}
    writer = _Writer(rng, catalog, popularity)
    splits = {split: [writer.dialogue(f"{split}-{n:05d}") for n in range(size)] for split, size in (sizes or SPLIT_SIZES).items()}
    return Dataset("synthetic", catalog, splits, [f"synthetic generator, seed {seed}"])
