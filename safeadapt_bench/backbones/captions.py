"""Templated captions of benchmark scenes: object category, colour and position.

Captions name every category, held-out ones included (a web-pretrained CLIP has seen them all too).
Each caption is tagged with what it asserts, ``(category, position or None)``, so a contrastive loss
can treat every caption that is true of an image as a positive.
"""

from __future__ import annotations

import numpy as np

from safeadapt_bench.envs.categories import CATEGORIES, TEMPLATES, instructions

#: Position words, by the object's y coordinate (world frame, metres): -y is the image's left.
POSITIONS: tuple[str, ...] = ("left", "middle", "right")
#: |y| below this is "middle".
MIDDLE_HALF_WIDTH = 0.04

#: Caption templates that assert the category only.
CATEGORY_TEMPLATES: tuple[str, ...] = (
    "a photo of a {colour} {noun}",
    "a {noun} on a table",
    "a {colour} {noun} next to a glass",
    "a robot arm and a {noun}",
)
#: Caption templates that assert category and position.
POSITION_TEMPLATES: tuple[str, ...] = (
    "a {colour} {noun} on the {pos} of the table",
    "the {noun} is on the {pos}",
    "a {noun} to the {pos} of the view",
)
#: The probe's caption per category (category retrieval) and per (category, position).
PROBE_TEMPLATE = "a photo of a {colour} {noun}"
PROBE_POSITION_TEMPLATE = "a {colour} {noun} on the {pos} of the table"


def position_word(y: float) -> str:
    """``"left"``, ``"middle"`` or ``"right"`` for an object at world ``y`` (metres)."""
    if y < -MIDDLE_HALF_WIDTH:
        return "left"
    if y > MIDDLE_HALF_WIDTH:
        return "right"
    return "middle"


def _plain_nouns(category: str) -> tuple[str, ...]:
    cat = CATEGORIES[category]
    return tuple(n for n in cat.nouns if not n.startswith(cat.colour + " ")) or cat.nouns


def probe_caption(category: str, position: str | None = None) -> str:
    """The fixed caption the probe uses for ``category`` (and ``position``)."""
    cat = CATEGORIES[category]
    noun = _plain_nouns(category)[0]
    if position is None:
        return PROBE_TEMPLATE.format(colour=cat.colour, noun=noun)
    return PROBE_POSITION_TEMPLATE.format(colour=cat.colour, noun=noun, pos=position)


def all_captions(category: str, position: str) -> list[tuple[str, str | None]]:
    """Every caption true of a scene with ``category`` at ``position``, each with its position tag
    (``None`` when it asserts only the category). Includes the task instructions."""
    cat = CATEGORIES[category]
    out: list[tuple[str, str | None]] = []
    for noun in _plain_nouns(category):
        out += [(t.format(colour=cat.colour, noun=noun), None) for t in CATEGORY_TEMPLATES]
        out += [(t.format(colour=cat.colour, noun=noun, pos=position), position) for t in POSITION_TEMPLATES]
    for task in TEMPLATES:
        out += [(s, None) for s in instructions(task, category)]
    return out


def sample_caption(
    category: str, position: str, rng: np.random.Generator, position_fraction: float = 1 / 3
) -> tuple[str, str | None]:
    """One caption of a scene, drawn with ``rng``; ``position_fraction`` of them name the position."""
    caps = all_captions(category, position)
    with_pos = [c for c in caps if c[1] is not None]
    pool = with_pos if rng.random() < position_fraction else [c for c in caps if c[1] is None]
    return pool[int(rng.integers(len(pool)))]


def vocabulary_texts() -> list[str]:
    """Every text that pretraining can use (to know which token-embedding rows are trained)."""
    texts = {probe_caption(c) for c in CATEGORIES}
    for c in CATEGORIES:
        for p in POSITIONS:
            texts.update(t for t, _ in all_captions(c, p))
            texts.add(probe_caption(c, p))
    return sorted(texts)
