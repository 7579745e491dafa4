"""The sample data bundled with kyokan (written for this project; CC BY 4.0)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED = {
    "ja": "emplifai_sample_ja.jsonl",
    "ed-en": "ed_sample_en.csv",
}


def sample_path(name: str = "ja") -> Path:
    """Path of a bundled sample: ``ja`` (EmplifAI-style Japanese, 28 labels) or ``ed-en``
    (English in the EmpatheticDialogues CSV layout)."""
    from kyokan.errors import KyokanError, did_you_mean

    if name not in BUNDLED:
        raise KyokanError(f"unknown bundled sample {name!r}{did_you_mean(name, BUNDLED)}; one of {', '.join(BUNDLED)}")
    return Path(str(resources.files("kyokan.data") / "samples" / BUNDLED[name]))
