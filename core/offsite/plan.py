"""The planner: what one run should do at one target, as a pure function.

``plan(local, placed, listing, options)`` takes values only (what the
destination folder holds, what the journal says was placed, what the target
lists, the target's options and policy baselines) and returns actions. It
never touches a disk or a network, so every rule below is a fast unit test.

Rules (docs/USAGE.md explains them to operators):

* **Trust, but check.** A journal entry whose file is missing at the target
  or has another size is forgotten and planned again (a target edited by
  hand). One whose file is there but not as placed (another checksum of the
  kind the target keeps, such as an S3 ETag; else another modification
  time), or that ``offsite verify`` found damaged, is distrusted: kept, marked,
  and put again until a new upload replaces it. Files at the target that
  offsite did not place are foreign: left alone, in mirror mode too.
* **Adopted files.** A foreign file that :mod:`offsite.adopt` found to hold
  the destination's file at the path offsite would put it (``adopted``,
  read from the target before planning) counts as placed: nothing is sent
  for it, and the plan lists it. Adopted files (these, and journal entries
  marked ``adopted``) are never deleted by a mirror, nor counted in
  ``max_delete``'s share: offsite did not write them.
* **A foreign file in the way** (at a path offsite puts a file to, and not
  adopted: another size or other bytes) is replaced by the upload, never
  silently: a ``replaces-foreign`` note names it in the plan and the run.
* **Mirror**: put what is missing or different (size, or the source changed
  since it was placed), delete what the destination no longer has, but only
  files offsite placed and the target still holds as placed, never a hidden
  one; no consolidation; filter and policy ignored. A remote file is never
  deleted because its local counterpart is incomplete or damaged, and when
  the deletes would be more than ``max_delete`` percent of the files offsite
  placed there, none is made (a note says why).
* **Otherwise, per generation set** allowed by the type filter and the
  policies: put the full image if the target lacks it; find the newest state
  S the target's chain reaches; the destination's incrementals after S,
  k..n, go as one image: incremental k alone, or their consolidation named
  as n. A chain that breaks stops at the break (reported); an incomplete
  image waits; a damaged image is reported and never sent. Nothing is
  deleted. Other (non-image) files are copied when missing or different.
* **Policies**: ``new_images_only`` keeps images (and other files) created at
  or after its baseline; ``new_sets_only`` keeps generation sets whose full
  image was created at or after its baseline; baselines come from the
  journal (recorded when the option was first seen enabled). ``subfolder``
  prefixes every remote path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import attrs

from offsite import paths
from offsite.image.format import Metadata
from offsite.journal import Placed
from offsite.transport import RemoteFile

Kind = Literal["full", "incremental", "other"]
#: Modification times closer than this are one: a store may list a time to
#: the millisecond that it reported to the second when the file was placed.
MTIME_SLACK = 1.0
ALL_TYPES: frozenset[str] = frozenset({"full", "incremental", "other"})


@attrs.frozen
class LocalFile:
    """One file in the destination folder, as the scan saw it.

    :ivar meta: the image's header; ``None`` for other files and for images
        that could not be read.
    :ivar status: ``ok``; ``incomplete`` (an image still being written);
        ``bad`` (claims to be an image but is damaged: ``problem`` says why).
    """

    name: str
    size: int
    mtime: float
    meta: Metadata | None = None
    status: Literal["ok", "incomplete", "bad"] = "ok"
    problem: str = ""

    @property
    def kind(self) -> Kind:
        return self.meta.kind if self.meta is not None else "other"

    @property
    def created(self) -> float:
        """When the image says it was made (other files: their mtime)."""
        return self.meta.created_at if self.meta is not None else self.mtime


@attrs.frozen
class Options:
    """What the planner needs of a target's configuration."""

    mirror: bool = False
    types: frozenset[str] = ALL_TYPES
    subfolder: str = ""
    #: ``new_images_only`` baseline (epoch seconds), or None when off.
    images_since: float | None = None
    #: ``new_sets_only`` baseline, or None when off.
    sets_since: float | None = None
    #: Mirror: the most deletes one run may make, in percent of the files
    #: offsite placed there; None for no limit.
    max_delete: int | None = None


@attrs.frozen
class Put:
    """Upload ``sources`` (one file as it is, or several consolidated) to ``remote``."""

    remote: str
    sources: tuple[str, ...]
    kind: Kind
    reason: str
    set_id: str | None = None
    seq_first: int | None = None
    seq_last: int | None = None
    state: str | None = None
    parent_state: str | None = None

    @property
    def consolidated(self) -> bool:
        return len(self.sources) > 1


@attrs.frozen
class Delete:
    """Delete ``remote`` at the target (mirror mode only)."""

    remote: str
    reason: str


NoteKind = Literal["waiting", "broken-chain", "bad-image", "skipped", "deletes-withheld",
                   "replaces-foreign"]


@attrs.frozen
class Note:
    """Something the operator should know that is not an action."""

    kind: NoteKind
    file: str
    message: str

    @property
    def bad_data(self) -> bool:
        """A damaged image or a broken chain: exit code 3."""
        return self.kind in ("broken-chain", "bad-image")


@attrs.frozen
class Plan:
    """The actions for one target, in order, with notes and stale journal entries."""

    actions: tuple[Put | Delete, ...] = ()
    notes: tuple[Note, ...] = ()
    #: Journal entries whose file is gone from the target (or has another
    #: size): forget them.
    forget: tuple[str, ...] = ()
    #: Journal entries whose file the target still has, but not as placed
    #: (path, why): keep them marked until the file is put again.
    distrust: tuple[tuple[str, str], ...] = ()
    #: Foreign files found to hold the destination's files: record them as
    #: placed (adopted); nothing is sent for them.
    adopted: tuple[Placed, ...] = ()

    @property
    def puts(self) -> tuple[Put, ...]:
        return tuple(a for a in self.actions if isinstance(a, Put))

    @property
    def deletes(self) -> tuple[Delete, ...]:
        return tuple(a for a in self.actions if isinstance(a, Delete))


def plan(
    local: Sequence[LocalFile],
    placed: Sequence[Placed],
    listing: Sequence[RemoteFile],
    options: Options,
    adopted: Sequence[Placed] = (),
) -> Plan:
    """Plan one run at one target. Pure: values in, values out.

    :param adopted: foreign files :func:`offsite.adopt.adopt` found to hold
        the destination's files (not yet in the journal).
    """
    remote = {f.path: f for f in listing}
    placed = [*placed, *adopted]
    known = {p.remote_path for p in placed}
    trusted: dict[str, Placed] = {}  # there as placed, and not found damaged: counts as placed
    ours: set[str] = set()  # there as placed (damaged or not): mirror may delete it
    forget: list[str] = []
    distrust: list[tuple[str, str]] = []
    replaced: set[str] = set()  # there, but not what offsite put: put it again
    for p in placed:
        seen = remote.get(p.remote_path)
        if seen is None or seen.size != p.size:
            forget.append(p.remote_path)
            continue
        why = changed(p, seen)
        if why and why != p.problem:
            distrust.append((p.remote_path, why))
        if not why and not p.adopted:
            ours.add(p.remote_path)
        if why or p.problem:
            replaced.add(p.remote_path)
        else:
            trusted[p.remote_path] = p

    notes = [_status_note(f) for f in local if f.status != "ok"]
    usable = [f for f in local if f.status == "ok"]
    if options.mirror:
        actions = _mirror(usable, local, trusted, remote, replaced, ours)
        actions, withheld = _limit_deletes(actions, len(ours), options.max_delete)
        notes += withheld
    else:
        actions, more = _replicate(usable, trusted, remote, replaced, options)
        notes += more
    notes += [Note("replaces-foreign", a.remote,
                   f"a file offsite did not place is there ({remote[a.remote].size} bytes) and "
                   "does not match: the upload replaces it")
              for a in actions if isinstance(a, Put) and a.remote in remote
              and a.remote not in known]
    kept = tuple(p for p in adopted if p.remote_path in trusted)
    return Plan(tuple(actions), tuple(notes), tuple(sorted(forget)), tuple(sorted(distrust)),
                kept)


def changed(p: Placed, seen: RemoteFile) -> str | None:
    """Why the file at the target is not the one offsite placed, or None.

    The target's checksum, where it keeps one of the kind recorded (``etag:``
    with ``etag:``), decides. Otherwise the modification time the target
    reported when the file was placed must still be the one it lists: a file
    overwritten in place with other bytes of the same size has a new one. A
    journal from before either was kept, or a plugin that reports neither,
    says nothing.
    """
    if p.remote_checksum and seen.checksum:
        kind, _, _ = p.remote_checksum.partition(":")
        if seen.checksum.partition(":")[0] == kind:
            if seen.checksum != p.remote_checksum:
                return f"replaced at the target (its checksum is now {seen.checksum})"
            return None
    if p.remote_mtime and seen.mtime and abs(seen.mtime - p.remote_mtime) > MTIME_SLACK:
        return "changed at the target since offsite placed it (its modification time moved)"
    return None


def _limit_deletes(actions: list[Put | Delete], ours: int,
                   limit: int | None) -> tuple[list[Put | Delete], list[Note]]:
    """Hold every delete back when they are more than ``limit`` % of what is ours.

    A destination that suddenly lacks most of its files is more often an
    unmounted disk or a wrong path than a retention policy: deleting the
    copies then would lose the only ones left.
    """
    deletes = [a for a in actions if isinstance(a, Delete)]
    if limit is None or not deletes or len(deletes) * 100 <= limit * ours:
        return actions, []
    share = round(100 * len(deletes) / ours) if ours else 100
    note = Note("deletes-withheld", deletes[0].remote,
                f"mirror would delete {len(deletes)} of the {ours} files offsite placed at "
                f"the target ({share}%), more than max_delete allows ({limit}%): nothing was "
                "deleted")
    return [a for a in actions if not isinstance(a, Delete)], [note]


def _status_note(f: LocalFile) -> Note:
    if f.status == "incomplete":
        return Note("waiting", f.name, "incomplete (still being written): it waits")
    return Note("bad-image", f.name, f.problem or "damaged image: not replicated")


def _unchanged(f: LocalFile, seen: RemoteFile | None, placed: Placed | None,
               replaced: set[str]) -> bool:
    if seen is None or seen.size != f.size or seen.path in replaced:
        return False
    if placed is None or placed.sources != (f.name,):
        return True  # same size and nothing says otherwise
    return placed.source_size == f.size and placed.source_mtime == f.mtime


def _mirror(usable: Sequence[LocalFile], local: Sequence[LocalFile],
            trusted: dict[str, Placed], remote: dict[str, RemoteFile],
            replaced: set[str], ours: set[str]) -> list[Put | Delete]:
    actions: list[Put | Delete] = []
    for f in sorted(usable, key=_chain_order):  # fulls, then incrementals in order
        seen = remote.get(f.name)
        if not _unchanged(f, seen, trusted.get(f.name), replaced):
            actions.append(_put_file(f, f.name, _why(seen, replaced)))
    keep = {f.name for f in local}  # incomplete or damaged locally: keep the remote copy
    # Only what offsite placed and the target still holds as placed: never a
    # foreign file, a file replaced by hand, or a hidden one (another tool's
    # temporary file, an upload in progress).
    actions += [Delete(path, "not at the destination") for path in sorted(ours)
                if path not in keep and not _hidden(path)]
    return actions


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def _why(seen: RemoteFile | None, replaced: set[str]) -> str:
    """A put's reason, for a file that is not as placed at the target."""
    if seen is None:
        return "missing"
    return "not as placed at the target" if seen.path in replaced else "changed"


def _chain_order(f: LocalFile) -> tuple[int, str, int, int, str]:
    """Images set by set, full first and incrementals by sequence; other files last."""
    m = f.meta
    if m is None:
        return (1, "", 0, 0, f.name)
    return (0, m.label, m.generation, m.seq_first, f.name)


def _put_file(f: LocalFile, remote: str, reason: str) -> Put:
    m = f.meta
    if m is None:
        return Put(remote, (f.name,), "other", reason)
    return Put(remote, (f.name,), m.kind, reason, m.set_id, m.seq_first, m.seq_last,
               m.state, m.parent_state)


def _replicate(usable: Sequence[LocalFile], trusted: dict[str, Placed],
               remote: dict[str, RemoteFile], replaced: set[str], options: Options
               ) -> tuple[list[Put | Delete], list[Note]]:
    actions: list[Put | Delete] = []
    notes: list[Note] = []
    since = options.images_since

    def new_enough(f: LocalFile) -> bool:
        return since is None or f.created >= since

    sets: dict[str, list[LocalFile]] = defaultdict(list)
    for f in usable:
        if f.meta is not None:
            sets[f.meta.set_id].append(f)
    placed_by_set: dict[str, list[Placed]] = defaultdict(list)
    for p in trusted.values():
        if p.set_id is not None:
            placed_by_set[p.set_id].append(p)

    for set_id, files in sorted(sets.items(), key=lambda kv: _set_order(kv[1])):
        full = next((f for f in files if f.kind == "full"), None)
        started = full.created if full else min(f.created for f in files)
        if options.sets_since is not None and started < options.sets_since:
            continue
        set_actions, set_notes = _replicate_set(files, full, placed_by_set[set_id], options,
                                                new_enough)
        actions += set_actions
        notes += set_notes

    if "other" in options.types:
        for f in usable:
            if f.meta is None and new_enough(f):
                target = paths.join(options.subfolder, f.name)
                seen = remote.get(target)
                if not _unchanged(f, seen, trusted.get(target), replaced):
                    actions.append(_put_file(f, target, _why(seen, replaced)))
    return actions, notes


def _set_order(files: Sequence[LocalFile]) -> tuple[str, int]:
    m = files[0].meta
    assert m is not None
    return m.label, m.generation


def _replicate_set(files: list[LocalFile], full: LocalFile | None, placed: list[Placed],
                   options: Options, allowed: Callable[[LocalFile], bool]
                   ) -> tuple[list[Put | Delete], list[Note]]:
    actions: list[Put | Delete] = []
    notes: list[Note] = []
    placed_full = next((p for p in placed if p.kind == "full"), None)

    # Where does the target's chain of this set end?
    if placed_full is not None:
        start = placed_full.state
    elif full is not None:
        start = full.meta.state if full.meta else None
    else:
        newest = max((p for p in placed if p.kind == "incremental"),
                     key=lambda p: p.seq_last or 0, default=None)
        start = newest.state if newest else None
    reached = _jump_policy_gaps(_walk_placed(start, placed), placed, files, allowed)

    if placed_full is None and full is not None and "full" in options.types and allowed(full):
        actions.append(_put_file(full, paths.join(options.subfolder, full.name), "missing"))

    incrementals = sorted((f for f in files if f.kind == "incremental"),
                          key=lambda f: (f.meta.seq_first if f.meta else 0))
    if reached is None:
        if incrementals:
            notes.append(Note("broken-chain", incrementals[0].name,
                              "no full image of this set, here or at the target: its "
                              "incrementals cannot be restored and are not replicated"))
        return actions, notes

    chain = _walk_local(reached, incrementals)
    chained = {f.name for f in chain}
    covered = max((p.seq_last or 0 for p in placed if p.state == reached), default=0)
    if full is not None and full.meta is not None and full.meta.state == reached:
        covered = max(covered, full.meta.seq_last)
    beyond = [f for f in incrementals if f.name not in chained
              and f.meta is not None and f.meta.seq_first > covered]
    if beyond:
        last_ok = chain[-1].name if chain else "the target's last image"
        notes.append(Note("broken-chain", beyond[0].name,
                          f"does not apply to the state {last_ok} leaves: the chain breaks "
                          "here; nothing from here on is replicated"))
    if "incremental" not in options.types:
        return actions, notes
    for run in _runs([f for f in chain if allowed(f)], chain):
        actions.append(_put_run(run, options.subfolder))
    return actions, notes


def _walk_placed(start: str | None, placed: Iterable[Placed]) -> str | None:
    """The newest state reachable from ``start`` through placed images."""
    if start is None:
        return None
    by_parent: dict[str, list[Placed]] = defaultdict(list)
    for p in placed:
        if p.parent_state is not None:
            by_parent[p.parent_state].append(p)
    state, seen = start, {start}
    while by_parent.get(state):
        step = max(by_parent[state], key=lambda p: p.seq_last or 0)  # furthest first
        if step.state is None or step.state in seen:
            break
        state = step.state
        seen.add(state)
    return state


def _jump_policy_gaps(reached: str | None, placed: Sequence[Placed],
                      files: Sequence[LocalFile], allowed: Callable[[LocalFile], bool]
                      ) -> str | None:
    """Carry the target's reach across images a policy left out.

    With ``new_images_only``, incrementals before the baseline are never
    sent, so the target's chain has a gap on purpose. When the target holds
    the run that starts right after such a gap, it has reached that run's
    end. A gap made by deleting files at the target is different: there the
    left-out images are allowed, so it is planned again.
    """
    incrementals = [f for f in files if f.kind == "incremental"]
    while reached is not None:
        chain = _walk_local(reached, incrementals)
        first = next((f for f in chain if allowed(f)), None)
        if first is None or first is chain[0] or first.meta is None:
            return reached
        parent = first.meta.parent_state
        jump = _walk_placed(parent, placed)
        if jump is None or jump == parent:
            return reached
        reached = jump
    return reached


def _walk_local(state: str, incrementals: Sequence[LocalFile]) -> list[LocalFile]:
    """The destination's incrementals that chain on from ``state``, in order."""
    by_parent: dict[str, list[LocalFile]] = defaultdict(list)
    for f in incrementals:
        if f.meta is not None and f.meta.parent_state is not None:
            by_parent[f.meta.parent_state].append(f)
    chain: list[LocalFile] = []
    seen = {state}
    while by_parent.get(state):
        # The finest step first: a plain incremental rather than a consolidation.
        step = min(by_parent[state], key=lambda f: f.meta.seq_last if f.meta else 0)
        if step.meta is None or step.meta.state in seen:
            break
        chain.append(step)
        state = step.meta.state
        seen.add(state)
    return chain


def _runs(keep: Sequence[LocalFile], chain: Sequence[LocalFile]) -> list[list[LocalFile]]:
    """Split the kept images into runs that are contiguous in the chain."""
    position = {f.name: i for i, f in enumerate(chain)}
    runs: list[list[LocalFile]] = []
    for f in keep:
        if runs and position[f.name] == position[runs[-1][-1].name] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs


def _put_run(run: Sequence[LocalFile], subfolder: str) -> Put:
    first, last = run[0].meta, run[-1].meta
    assert first is not None and last is not None
    if len(run) == 1:
        reason = f"incremental {first.seq_first} pending"
    else:
        reason = (f"incrementals {first.seq_first}..{last.seq_last} pending: "
                  f"consolidated into one named as {last.seq_last}")
    return Put(paths.join(subfolder, run[-1].name), tuple(f.name for f in run), "incremental",
               reason, first.set_id, first.seq_first, last.seq_last, last.state,
               first.parent_state)
