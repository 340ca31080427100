"""The text an item is embedded from: title, year and whatever metadata the source has."""

from gencrs.data.schema import Item


def item_text(item: Item) -> str:
    parts = [item.display]
    if item.genres:
        parts.append("Genres: " + ", ".join(item.genres))
    if item.directors:
        parts.append("Directed by " + ", ".join(item.directors))
    if item.actors:
        parts.append("Starring " + ", ".join(item.actors))
    if item.writers:
        parts.append("Written by " + ", ".join(item.writers))
    if item.plot:
        parts.append(item.plot)
    return ". ".join(p.strip() for p in parts if p and p.strip())
