"""Object categories, their train / held-out splits and instruction paraphrases.

This module is pure Python: listing categories must not import robosuite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Characters allowed in instructions (the ``spaces.Text`` charset).
INSTRUCTION_CHARSET = "abcdefghijklmnopqrstuvwxyz '-"
#: Maximum instruction length in characters.
INSTRUCTION_MAX_LENGTH = 64


@dataclass(frozen=True)
class Category:
    """One graspable object category.

    Attributes:
        name: category id used in ``categories=[...]`` and ``info["category"]``.
        model: class name in ``robosuite.models.objects``.
        model_kwargs: keyword arguments for that class (sizes in metres, colours).
        nouns: ways an instruction names the object.
        colour: a colour word for captions.
    """

    name: str
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    nouns: tuple[str, ...] = ()
    colour: str = ""


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("cube", "BoxObject", {"size": [0.021, 0.021, 0.021], "rgba": [0.85, 0.15, 0.1, 1]},
                 ("cube", "red cube", "block", "red block"), "red"),
        Category("ball", "BallObject", {"size": [0.026], "rgba": [0.95, 0.75, 0.1, 1]},
                 ("ball", "yellow ball", "sphere"), "yellow"),
        Category("can", "CanObject", {}, ("can", "soda can", "tin can"), "red"),
        Category("milk", "MilkObject", {}, ("milk carton", "milk", "carton of milk"), "white"),
        Category("bread", "BreadObject", {}, ("bread", "loaf of bread", "bread roll"), "brown"),
        Category("cylinder", "CylinderObject", {"size": [0.022, 0.04], "rgba": [0.1, 0.45, 0.9, 1]},
                 ("cylinder", "blue cylinder", "round block"), "blue"),
        Category("capsule", "CapsuleObject", {"size": [0.02, 0.025], "rgba": [0.6, 0.2, 0.8, 1]},
                 ("capsule", "purple capsule", "pill"), "purple"),
        Category("bottle", "BottleObject", {}, ("bottle", "glass bottle", "water bottle"), "green"),
        Category("lemon", "LemonObject", {}, ("lemon", "yellow lemon", "citrus fruit"), "yellow"),
        Category("cereal", "CerealObject", {}, ("cereal box", "cereal", "box of cereal"), "red"),
    )
}

#: Fixed, documented splits. Each held-out category has a train category of similar shape.
SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "Lift": {
        "train": ("cube", "ball", "can", "milk", "bread"),
        "heldout": ("cylinder", "capsule", "bottle", "lemon", "cereal"),
    },
    "PickPlace": {
        "train": ("cube", "ball", "can", "milk", "bread"),
        "heldout": ("cylinder", "capsule", "bottle", "lemon", "cereal"),
    },
}

#: Instruction templates per task family; ``{obj}`` is replaced by one of the category's nouns.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "Lift": ("lift the {obj}", "pick up the {obj}", "raise the {obj} off the table",
             "grab the {obj} and lift it"),
    "PickPlace": ("put the {obj} on the green square", "place the {obj} in the target area",
                  "move the {obj} onto the green pad", "pick up the {obj} and put it on the square"),
}

#: Object colours of a scene (``object_colours=``): each category's own, or a random tint per episode
#: (or a mapping ``{category: (r, g, b)}`` that paints those categories, see :func:`check_object_colours`).
OBJECT_COLOURS: tuple[str, ...] = ("fixed", "random")

#: The fragile hazard object in every scene.
HAZARD_NAME = "glass"


def instructions(task: str, category: str, colour_words: bool = True) -> tuple[str, ...]:
    """All instruction paraphrases for ``category`` in ``task``, in a fixed order.

    ``colour_words=False`` leaves out the nouns that name the category's colour ("red cube"), for
    scenes whose object colours are randomised.
    """
    cat = CATEGORIES[category]
    nouns = [n for n in cat.nouns if colour_words or cat.colour not in n.split()]
    return tuple(t.format(obj=n) for t in TEMPLATES[task] for n in nouns)


def resolve_categories(task: str, split: str, categories: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate a category list (or take the split's) and return it as a tuple.

    Raises:
        ValueError: unknown task, split or category, naming the valid choices.
    """
    if task not in SPLITS:
        raise ValueError(f"Unknown task {task!r}; known tasks: {sorted(SPLITS)}.")
    if split not in SPLITS[task]:
        raise ValueError(f"Unknown split {split!r} for {task}; choose one of {sorted(SPLITS[task])}.")
    if categories is None:
        return SPLITS[task][split]
    if isinstance(categories, str):
        categories = [categories]
    cats = tuple(categories)
    if not cats:
        raise ValueError("`categories` is empty; pass at least one category or None for the split.")
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"Unknown categor{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                         f"known categories: {sorted(CATEGORIES)}.")
    return cats


def check_object_colours(object_colours: Any) -> dict[str, tuple[float, float, float]]:
    """Validate ``object_colours`` and return the categories it paints: ``{}`` for ``"fixed"`` and
    ``"random"``, else the mapping ``{category: (r, g, b)}`` (each in [0, 1]) itself, which draws
    those categories in the given colours (the others keep their own), e.g. to ask whether a policy
    finds a held-out object by its shape or by its colour.

    Raises:
        ValueError: an unknown mode or category, or a colour that is not three numbers in [0, 1].
    """
    if isinstance(object_colours, str):
        if object_colours not in OBJECT_COLOURS:
            raise ValueError(f"Unknown object_colours {object_colours!r}; choose one of {list(OBJECT_COLOURS)} "
                             "or pass a mapping {category: (r, g, b)}.")
        return {}
    if not isinstance(object_colours, dict) or not object_colours:
        raise ValueError(f"object_colours must be one of {list(OBJECT_COLOURS)} or a non-empty mapping "
                         f"{{category: (r, g, b)}}, not {object_colours!r}.")
    out = {}
    for name, rgb in object_colours.items():
        if name not in CATEGORIES:
            raise ValueError(f"object_colours names an unknown category {name!r}; known: {sorted(CATEGORIES)}.")
        try:
            values = tuple(float(v) for v in rgb)
        except (TypeError, ValueError):
            values = ()
        if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"object_colours[{name!r}] must be three numbers (r, g, b) in [0, 1], not {rgb!r}.")
        out[name] = values
    return out
