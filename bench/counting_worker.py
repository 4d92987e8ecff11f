"""`flask --app app worker` that logs every text its embedder encodes: one line "MODEL SHA-256" per text.

A line is appended (one unbuffered write per batch) once the batch is encoded, so the log survives a
kill -9 of the worker; comparing the logs of the workers of one job shows whether a text was encoded
twice. Used by bench/bench_import.py --rq and the RQ import tests.

    python bench/counting_worker.py LOG [worker options, e.g. --name w1 --burst]
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def count_encodings(log: str) -> None:
    """Wrap encode_documents of every embedder backend to append the encoded texts' hashes to log."""
    from embeddings import backends

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for cls in (backends.E5Embedder, backends.SentenceTransformerEmbedder, backends.SyntheticEmbedder):
        real = cls.encode_documents

        def logged(self: Any, texts: Sequence[str], batch_size: int = 32, _real: Any = real) -> Any:
            out = _real(self, texts, batch_size)
            lines = "".join(f"{self.name} {hashlib.sha256(t.encode('utf-8')).hexdigest()}\n" for t in texts)
            os.write(fd, lines.encode("utf-8"))
            return out

        cls.encode_documents = logged  # type: ignore[method-assign]


def read_log(log: str | Path) -> list[tuple[str, str]]:
    """Return the (model, text SHA-256) pairs a counting worker logged, in order."""
    path = Path(log)
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text("utf-8").splitlines() if line]  # type: ignore[misc]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    count_encodings(sys.argv[1])
    from flask.cli import main as flask_main

    sys.argv = ["flask", "--app", "app", "worker", *sys.argv[2:]]
    flask_main()


if __name__ == "__main__":
    main()
