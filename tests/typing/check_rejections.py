"""Prove that mypy rejects mistyped handlers: each ``# rejected`` line errors, and no other."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mypy import api

HERE = Path(__file__).parent
REJECTED = sorted((HERE / "rejected").glob("*.py"))


def main() -> int:
    """Run mypy on each file under rejected/ and compare its errors with the marked lines."""
    failures = []
    for path in REJECTED:
        marked = {
            number
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if line.rstrip().endswith("# rejected")
        }
        stdout, _, _ = api.run(["--strict", "--no-incremental", "--show-error-codes", str(path)])
        reported = {
            int(match.group(1))
            for match in re.finditer(rf"{re.escape(path.name)}:(\d+): error", stdout)
        }
        if marked != reported:
            failures.append(
                f"{path.name}: expected errors on lines {sorted(marked)}, mypy reported "
                f"{sorted(reported)}\n{stdout}"
            )
        else:
            print(f"{path.name}: mypy rejects all {len(marked)} marked lines and nothing else")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
