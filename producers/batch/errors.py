"""Why a batch cannot start; these extend the tree rooted in `contract.errors`.

```
TierlineError
└─ BatchRejected
   ├─ DuplicateCustomIds (.duplicates: custom_id → line numbers, .count)
   └─ CorruptOutput (.path, .line)
```
"""

from __future__ import annotations

from pathlib import Path

from contract.errors import TierlineError


class BatchRejected(TierlineError):
    code = "batch_rejected"


class DuplicateCustomIds(BatchRejected):
    """Some custom_ids stand on more than one line; nothing was sent.

    duplicates: custom_id → every line it stands on (the first 1,000 ids). count: lines
    that repeat an earlier custom_id.
    """

    code = "duplicate_custom_id"

    def __init__(self, duplicates: dict[str, list[int]], *, count: int) -> None:
        listed = list(duplicates.items())[:10]
        shown = "; ".join(f"{cid!r} on lines {', '.join(map(str, lines))}" for cid, lines in listed)
        more = ", ..." if count > sum(len(lines) - 1 for _, lines in listed) else ""
        super().__init__(f"{count} line(s) repeat an earlier custom_id: {shown}{more}")
        self.duplicates = duplicates
        self.count = count


class CorruptOutput(BatchRejected):
    """An earlier output file has a line that is not an output record (not a torn tail)."""

    code = "corrupt_output"

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}; fix or move the file, then run again")
        self.path = path
        self.line = line
