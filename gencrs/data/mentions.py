"""Marking item mentions in raw text for sources that list a turn's items but do not mark them in the text."""

import re

from gencrs.format import mention


def mark_mentions(text: str, surfaces: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """Replace the first case-insensitive whole-word occurrence of each surface form with its item's placeholder.

    Returns the marked text and the ids whose surface was not found (they stay in the turn's items, without a span).
    Longer surfaces are placed first so that 'Die Hard 2' is not eaten by 'Die Hard'.
    """
    unplaced = []
    for item_id, surface in sorted(surfaces, key=lambda s: -len(s[1])):
        surface = surface.strip()
        pattern = re.compile(rf"(?<!\w){re.escape(surface)}(?!\w)", re.IGNORECASE) if surface else None
        match = pattern.search(text) if pattern else None
        # never match inside a placeholder placed earlier
        while match and _inside_placeholder(text, match.start()):
            match = pattern.search(text, match.end())
        if match is None:
            unplaced.append(item_id)
            continue
        text = text[: match.start()] + mention(item_id) + text[match.end():]
    return text, unplaced


def _inside_placeholder(text: str, pos: int) -> bool:
    opened = text.rfind("[[item:", 0, pos + 1)
    return opened != -1 and text.find("]]", opened) >= pos
