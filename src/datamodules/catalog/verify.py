"""Checks of a dataset folder: what was found, what is missing, grouped by the part of the dataset they concern."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAX_LISTED = 10  # missing paths named per check; the rest are counted


@dataclass
class Check:
    """One expectation about the folder (`what`), whether it holds, and the evidence."""

    part: str
    what: str
    ok: bool
    detail: str = ""
    missing: list[str] = field(default_factory=list)
    num_missing: int = 0


@dataclass
class VerifyReport:
    """The checks of one folder; `ok(part)` says whether a part (or every part) is complete."""

    dataset: str
    root: Path
    checks: list[Check]

    def parts(self) -> list[str]:
        return list(dict.fromkeys(c.part for c in self.checks))

    def ok(self, part: str | None = None) -> bool:
        checks = [c for c in self.checks if part is None or c.part == part]
        return bool(checks) and all(c.ok for c in checks)

    def format(self) -> str:
        lines = [f"{self.dataset} at {self.root}"]
        for part in self.parts():
            lines.append(f"  [{part}] {'complete' if self.ok(part) else 'INCOMPLETE'}")
            for check in (c for c in self.checks if c.part == part):
                lines.append(
                    f"    {'ok     ' if check.ok else 'MISSING'} {check.what}"
                    + (f": {check.detail}" if check.detail else "")
                )
                for path in check.missing:
                    lines.append(f"              - {path}")
                if check.num_missing > len(check.missing):
                    lines.append(f"              ... and {check.num_missing - len(check.missing)} more")
        return "\n".join(lines)


def expect_dir(root: Path, relative: str, part: str, what: str | None = None) -> Check:
    """The folder root/relative exists."""
    ok = (root / relative).is_dir()
    return Check(part, what or f"{relative}/", ok, "" if ok else "no such folder")


def expect_files(root: Path, relatives: Iterable[str], part: str, what: str) -> Check:
    """Every listed file (relative to root) exists; names the first missing ones."""
    relatives = list(relatives)
    missing = [r for r in relatives if not (root / r).is_file()]
    detail = f"{len(relatives) - len(missing)} of {len(relatives)} present"
    return Check(
        part,
        what,
        not missing and bool(relatives),
        detail if relatives else "nothing listed",
        missing[:MAX_LISTED],
        len(missing),
    )


def expect_glob(root: Path, pattern: str, part: str, minimum: int = 1, what: str | None = None) -> Check:
    """At least `minimum` paths match root/pattern."""
    count = sum(1 for _ in root.glob(pattern)) if root.is_dir() else 0
    ok = count >= minimum
    return Check(part, what or pattern, ok, f"{count} found" + ("" if ok else f", expected at least {minimum}"))


def failed_check(part: str, what: str, reason: str) -> Check:
    """A check that could not run (e.g. an index that does not parse)."""
    return Check(part, what, False, reason)


def report_from_problems(dataset: str, root: Path, problems: list[str], what: str) -> VerifyReport:
    """A report from a datamodule's own `verify(root) -> problems` list: one failed check per problem,
    or a single passed check `what` when there is none."""
    if not problems:
        return VerifyReport(dataset, Path(root), [Check("all", what, True)])
    return VerifyReport(dataset, Path(root), [failed_check("all", what, problem) for problem in problems])
