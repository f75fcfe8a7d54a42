"""Rebuild documents/data/climate_programmes.sqlite from its SQL source (run after editing it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "documents" / "data"


def main() -> None:
    target = DATA / "climate_programmes.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    conn.executescript((DATA / "climate_programmes.sql").read_text())
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
