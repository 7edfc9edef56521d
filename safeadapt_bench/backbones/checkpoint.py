"""Safe reading and writing of backbone weights: safetensors, or ``torch.load(weights_only=True)``.

The project's own format is a safetensors file whose keys are the open_clip ``state_dict`` keys
(plus ``visual.conv1.depth.*`` for the depth stem) and whose metadata names the model. For the
shipped default, the large token-embedding table is stored sparsely: only the rows of tokens that
the pretraining text uses (``<key>@rows`` indices and ``<key>@values``); other rows load as zeros.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

#: Value of the ``format`` metadata entry in files written by :func:`write_checkpoint`.
FORMAT = "safeadapt-backbone"
_ROWS, _VALUES = "@rows", "@values"


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file into ``(state_dict, metadata)`` without unpickling code.

    Accepts ``.safetensors`` files and torch files (``.pt``, ``.pth``, ``.bin``) holding a state dict,
    optionally under a ``"state_dict"`` key with DataParallel's ``module.`` prefix (open_clip's
    training checkpoints). Sparse rows written by :func:`write_checkpoint` are expanded.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is corrupt, truncated, not a weights file, or holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {str(path)!r} does not exist; pass the path of a .safetensors or .pt state-dict file."
        )
    with open(path, "rb") as f:
        head = f.read(16)
    metadata: dict[str, str] = {}
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"Checkpoint {str(path)!r} is corrupt or not a safetensors file ({err}); re-download or re-save it."
            ) from err
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"Checkpoint {str(path)!r} holds pickled Python objects that are not plain "
                "tensors, so it is refused (loaded with weights_only=True). Re-save it as "
                "`torch.save(model.state_dict(), path)` or as safetensors."
            ) from err
        except Exception as err:  # torch raises many types on corrupt files (IndexError, EOFError, ...)
            raise ValueError(
                f"Checkpoint {str(path)!r} is corrupt or truncated ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); re-download or re-save it."
            ) from err
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ValueError(
                f"Checkpoint {str(path)!r} is not a state dict (a mapping of names to tensors); "
                "save one with `torch.save(model.state_dict(), path)`."
            )
        sd = obj
        if sd and all(k.startswith("module.") for k in sd):
            sd = {k[len("module.") :]: v for k, v in sd.items()}
    return _expand_sparse(sd, metadata), metadata


def _expand_sparse(sd: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, torch.Tensor]:
    shapes = json.loads(metadata.get("sparse_shapes", "{}"))
    out = {k: v for k, v in sd.items() if not k.endswith((_ROWS, _VALUES))}
    for key, shape in shapes.items():
        rows, values = sd[key + _ROWS], sd[key + _VALUES]
        full = torch.zeros(shape, dtype=values.dtype)
        full[rows.long()] = values
        out[key] = full
    return out


def write_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, str],
    *,
    sparse_rows: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``state_dict`` as safetensors with ``metadata`` (``format`` is added).

    Args:
        sparse_rows: for some keys, the row indices to keep; the other rows are dropped (load as 0).
        dtype: cast floating-point tensors to this dtype (e.g. ``torch.float16``) to shrink the file.
    """
    from safetensors.torch import save_file

    sparse_rows = sparse_rows or {}
    out: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        if k in sparse_rows:
            rows = torch.as_tensor(sparse_rows[k], dtype=torch.int64).unique()
            out[k + _ROWS] = rows.to(torch.int32)
            out[k + _VALUES] = v[rows].contiguous()
        else:
            out[k] = v.contiguous()
    meta = {
        **metadata,
        "format": FORMAT,
        "sparse_shapes": json.dumps({k: list(state_dict[k].shape) for k in sparse_rows}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path), metadata=meta)
    return path
