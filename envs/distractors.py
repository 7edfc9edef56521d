"""Distractor objects: other categories on the table, so that only the instruction tells the target.

Pure numpy (no robosuite): the rules for how many distractors an env allows, which categories they
are drawn from, where they stand, which instructions stay unambiguous, and where their poses go in
the privileged ``state``.

Placement rules (table frame, metres): every distractor stands in the trapezoid of
:data:`DISTRACTOR_X` and :func:`half_width` (within the arm's reach and the camera's view), at least
:data:`CLEAR_TARGET` from the target (the hand descends there with open fingers),
:data:`CLEAR_GLASS` from the glass (it never touches it, so the glass keeps its rules),
:data:`CLEAR_PAD` from the PickPlace pad centre (the pad stays free) and :data:`CLEAR_OTHER` from
the other distractors.
"""

from __future__ import annotations

import re

import numpy as np

from safeadapt_bench.envs.categories import CATEGORIES, SPLITS

#: Most distractors any env allows: the table fits three beside the target, the glass and the pad.
MAX_DISTRACTORS = 3
#: Where distractors stand (table frame): x in DISTRACTOR_X and |y| below a half-width that shrinks
#: linearly from DISTRACTOR_HALF_WIDTH[0] at the far edge to [1] at the near edge, so that tall objects
#: stay inside the front camera's view (it looks from +x).
DISTRACTOR_X, DISTRACTOR_HALF_WIDTH = (-0.20, 0.10), (0.26, 0.18)
#: Smallest centre distances from the target, the glass, the pad centre and another distractor.
CLEAR_TARGET, CLEAR_GLASS, CLEAR_PAD, CLEAR_OTHER = 0.15, 0.12, 0.14, 0.11
#: Height gain (m) above its resting height at which a distractor counts as picked up (Lift's success height).
WRONG_LIFT_HEIGHT = 0.04
#: Privileged-state layout of one distractor slot, appended after the 23 base entries.
SLOT_LAYOUT = {"pos": 3, "quat": 4, "present": 1}
SLOT_DIM = sum(SLOT_LAYOUT.values())
#: Entries the distractor slots add to ``state`` whenever ``distractors > 0`` (padded to the maximum).
DISTRACTOR_STATE_DIM = MAX_DISTRACTORS * SLOT_DIM

_PLACE_TRIES, _SET_TRIES = 200, 50


def distractor_pool(task: str, categories: tuple[str, ...], distractor_split: str | None) -> tuple[str, ...]:
    """Categories distractors are drawn from: ``distractor_split``'s, or the env's own categories (``None``).

    Raises:
        ValueError: an unknown split, naming the choices.
    """
    if distractor_split is None:
        return tuple(categories)
    if distractor_split not in SPLITS[task]:
        raise ValueError(f"Unknown distractor_split {distractor_split!r} for {task}; choose one of "
                         f"{sorted(SPLITS[task])} or None (the env's own categories).")
    return SPLITS[task][distractor_split]


def max_distractors(targets: tuple[str, ...], pool: tuple[str, ...]) -> int:
    """The largest N every target allows: the pool less the target, and at most :data:`MAX_DISTRACTORS`."""
    return min(MAX_DISTRACTORS, min(len([c for c in pool if c != t]) for t in targets))


def check_distractors(n: object, targets: tuple[str, ...], pool: tuple[str, ...]) -> int:
    """``n`` as an int if it is a valid distractor count, else a ``ValueError`` naming the allowed range."""
    top = max_distractors(targets, pool)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= top:
        raise ValueError(f"distractors must be an integer from 0 to {top} (at most {MAX_DISTRACTORS} fit on the "
                         f"table, and {len(pool)} categories can be drawn: {list(pool)}, less the target); "
                         f"got {n!r}.")
    return int(n)


def check_forced(forced: object, target: str, pool: tuple[str, ...], n: int) -> tuple[str, ...]:
    """Validate ``reset(options={"distractor_categories": [...]})``; returns the names as a tuple.

    Raises:
        ValueError: a wrong count, an unknown or repeated name, or the target among them.
    """
    names = (forced,) if isinstance(forced, str) else tuple(forced)
    allowed = [c for c in pool if c != target]
    if target in names:
        raise ValueError(f"Category {target!r} is the target and cannot also be a distractor; "
                         f"choose {n} distractor categories from {allowed}.")
    if len(names) != n:
        raise ValueError(f"distractor_categories names {len(names)} categories but this env has distractors={n}; "
                         f"pass exactly {n} from {allowed}.")
    bad = [c for c in names if c not in allowed]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"distractor_categories {list(names)} must be {n} different categories from {allowed}.")
    return names


def choose(rng: np.random.Generator, target: str, pool: tuple[str, ...], n: int) -> tuple[str, ...]:
    """``n`` different pool categories other than ``target``, in the drawn order."""
    others = [c for c in pool if c != target]
    return tuple(others[i] for i in rng.permutation(len(others))[:n])


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text) is not None


def unambiguous(paraphrases: tuple[str, ...], distractors: tuple[str, ...]) -> tuple[str, ...]:
    """The paraphrases that name none of the distractors (e.g. "the round block" with a cube, a "block",
    on the table is dropped). Every pair of categories leaves some (``tests/test_distractors.py`` checks it)."""
    nouns = [n for c in distractors for n in CATEGORIES[c].nouns]
    keep = tuple(p for p in paraphrases if not any(_mentions(p, n) for n in nouns))
    return keep or paraphrases


def half_width(x: float) -> float:
    """Largest |y| of a distractor at ``x``."""
    (x0, x1), (w0, w1) = DISTRACTOR_X, DISTRACTOR_HALF_WIDTH
    return w0 + (w1 - w0) * (x - x0) / (x1 - x0)


def place(rng: np.random.Generator, n: int, target_xy: np.ndarray, glass_xy: np.ndarray,
          pad_xy: np.ndarray | None) -> list[np.ndarray]:
    """``n`` distractor positions that keep the module's placement rules (no draw when ``n`` is 0).

    Raises:
        RuntimeError: no layout found (cannot happen with the shipped ranges and ``n <= 3``).
    """
    if n == 0:
        return []
    fixed = [(np.asarray(target_xy), CLEAR_TARGET), (np.asarray(glass_xy), CLEAR_GLASS)]
    if pad_xy is not None:
        fixed.append((np.asarray(pad_xy), CLEAR_PAD))
    for _ in range(_SET_TRIES):
        out: list[np.ndarray] = []
        for _ in range(_PLACE_TRIES):
            p = np.array([rng.uniform(*DISTRACTOR_X), rng.uniform(-1.0, 1.0) * DISTRACTOR_HALF_WIDTH[0]])
            if abs(p[1]) <= half_width(p[0]) and all(np.linalg.norm(p - q) >= d for q, d in fixed) and all(
                    np.linalg.norm(p - q) >= CLEAR_OTHER for q in out):
                out.append(p)
                if len(out) == n:
                    return out
    raise RuntimeError(f"could not place {n} distractors on the table; use fewer distractors.")


def state_slots(poses: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The appended state entries: one slot (pos, quat wxyz, present = 1) per distractor, zero-padded."""
    out = np.zeros(DISTRACTOR_STATE_DIM)
    for i, (pos, quat) in enumerate(poses):
        out[i * SLOT_DIM:(i + 1) * SLOT_DIM] = np.concatenate([pos, quat, [1.0]])
    return out
