"""The planner's rules: table tests per rule, and hypothesis properties.

Pure values in, values out: no files, no targets, milliseconds per test.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offsite.image.format import Metadata
from offsite.journal import Placed
from offsite.plan import Delete, LocalFile, Options, Plan, Put, plan
from offsite.transport import RemoteFile

T0 = 1_800_000_000.0  # image creation times are T0 + seq * 100
ALL = frozenset({"full", "incremental", "other"})


def chain(n: int, *, label: str = "vol", gen: int = 1, t0: float = T0,
          set_id: str | None = None) -> list[LocalFile]:
    """A full image and incrementals 1..n, linked by state."""
    set_id = set_id or str(uuid.uuid4())
    states = [str(uuid.uuid4()) for _ in range(n + 1)]
    files = []
    for seq in range(n + 1):
        kind = "full" if seq == 0 else "incremental"
        created = t0 + seq * 100
        meta = Metadata(
            kind=kind, set_id=set_id, label=label, generation=gen,  # type: ignore[arg-type]
            seq_first=seq, seq_last=seq, state=states[seq],
            parent_state=None if seq == 0 else states[seq - 1], block_size=4096,
            volume_size=1 << 20, compression="zstd",
            created=_iso(created))
        name = f"{label}-b{gen:03d}.ofi" if seq == 0 else f"{label}-b{gen:03d}-i{seq:03d}.ofi"
        files.append(LocalFile(name, 1000 + seq, created, meta))
    return files


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z")


def other(name: str, size: int = 10, mtime: float = T0) -> LocalFile:
    return LocalFile(name, size, mtime)


_uploads = itertools.count()


def apply(p: Plan, local: Sequence[LocalFile], placed: list[Placed],
          listing: list[RemoteFile]) -> tuple[list[Placed], list[RemoteFile]]:
    """What the target and journal look like after the plan was carried out.

    Every placed file gets a checksum of the target's (an ETag), unique per
    upload, recorded in the journal and listed, as S3 does.
    """
    by_name = {f.name: f for f in local}
    placed = [x for x in placed if x.remote_path not in p.forget]
    marks = dict(p.distrust)
    placed = [attrs.evolve(x, problem=marks.get(x.remote_path, x.problem)) for x in placed]
    for action in p.actions:
        listing = [r for r in listing if r.path != action.remote]
        placed = [x for x in placed if x.remote_path != action.remote]
        if isinstance(action, Put):
            srcs = [by_name[s] for s in action.sources]
            size = sum(s.size for s in srcs)
            etag = f"etag:{next(_uploads)}"
            placed.append(Placed(
                action.remote, size, None, action.kind, action.set_id, action.seq_first,
                action.seq_last, action.state, action.parent_state, action.sources,
                size, max(s.mtime for s in srcs), T0, remote_checksum=etag))
            listing.append(RemoteFile(action.remote, size, T0, etag))
    return placed, listing


def puts(p: Plan) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.remote, a.sources) for a in p.puts]


# -- the seed's own example -----------------------------------------------------


def test_seed_example_consolidates_then_chains_on() -> None:
    local = chain(4)
    first = plan(local[:4], [], [], Options())
    assert puts(first) == [
        ("vol-b001.ofi", ("vol-b001.ofi",)),
        ("vol-b001-i003.ofi", ("vol-b001-i001.ofi", "vol-b001-i002.ofi", "vol-b001-i003.ofi")),
    ]
    merged = first.puts[1]
    assert (merged.seq_first, merged.seq_last, merged.consolidated) == (1, 3, True)
    assert merged.parent_state == local[0].meta.state and merged.state == local[3].meta.state
    placed, listing = apply(first, local, [], [])
    second = plan(local, placed, listing, Options())
    assert puts(second) == [("vol-b001-i004.ofi", ("vol-b001-i004.ofi",))]
    assert second.puts[0].parent_state == local[3].meta.state


def test_nothing_to_do_when_up_to_date() -> None:
    local = chain(3)
    placed, listing = apply(plan(local, [], [], Options()), local, [], [])
    again = plan(local, placed, listing, Options())
    assert again.actions == () and again.notes == () and again.forget == ()


# -- mirror ------------------------------------------------------------------------


def placed_as(f: RemoteFile) -> Placed:
    """The journal's record of having placed ``f``."""
    return Placed(f.path, f.size, None, "other", sources=(f.path,), source_size=f.size,
                  source_mtime=T0, remote_mtime=f.mtime)


def test_mirror_puts_missing_and_changed_deletes_extra_that_it_placed() -> None:
    a, b, c = other("a.txt"), other("b.txt", 20), other("c.txt", 30)
    gone, sub = RemoteFile("gone.txt", 5, T0), RemoteFile("sub/x.bin", 5, T0)
    foreign = RemoteFile("foreign.txt", 5, T0)
    listing = [RemoteFile("b.txt", 20, T0), RemoteFile("c.txt", 31, T0), gone, sub, foreign,
               RemoteFile(".hidden", 5, T0), RemoteFile(".x.offsite-partial", 5, T0)]
    placed = [placed_as(gone), placed_as(sub), placed_as(RemoteFile(".hidden", 5, T0))]
    p = plan([a, b, c], placed, listing, Options(mirror=True))
    assert puts(p) == [("a.txt", ("a.txt",)), ("c.txt", ("c.txt",))]
    assert [d.remote for d in p.deletes] == ["gone.txt", "sub/x.bin"]
    assert {a.reason for a in p.puts} == {"missing", "changed"}


def test_mirror_never_deletes_a_file_changed_at_the_target() -> None:
    mine = RemoteFile("mine.txt", 5, T0)
    placed = [placed_as(mine)]
    p = plan([], placed, [attrs.evolve(mine, mtime=T0 + 60)], Options(mirror=True))
    assert p.deletes == (), "someone else's file now, though offsite placed one there"
    assert [path for path, _ in p.distrust] == ["mine.txt"]
    assert plan([], placed, [mine], Options(mirror=True)).deletes == (Delete(
        "mine.txt", "not at the destination"),)


@pytest.mark.parametrize(("placed", "gone", "limit", "deleted"), [
    (10, 5, 50, 5), (10, 6, 50, 0), (10, 10, 100, 10), (1, 1, 50, 0), (4, 1, 0, 0),
    (4, 4, None, 4),
])
def test_max_delete_holds_every_delete_back(placed: int, gone: int, limit: int | None,
                                            deleted: int) -> None:
    files = [RemoteFile(f"f{i}.txt", 10, T0) for i in range(placed)]
    local = [other(f.path) for f in files[gone:]]
    p = plan(local, [placed_as(f) for f in files], files,
             Options(mirror=True, max_delete=limit))
    assert len(p.deletes) == deleted
    withheld = [n for n in p.notes if n.kind == "deletes-withheld"]
    assert bool(withheld) == (deleted == 0 and gone > 0)
    if withheld:
        assert f"delete {gone} of the {placed} files" in withheld[0].message
        assert not withheld[0].bad_data


def test_mirror_never_deletes_what_is_incomplete_or_damaged_here() -> None:
    local = [LocalFile("x-b001-i002.ofi", 5, T0, status="incomplete"),
             LocalFile("x-b001.ofi", 5, T0, status="bad", problem="corrupt")]
    listing = [RemoteFile("x-b001-i002.ofi", 9, T0), RemoteFile("x-b001.ofi", 9, T0)]
    p = plan(local, [], listing, Options(mirror=True))
    assert p.actions == ()
    assert [n.kind for n in p.notes] == ["waiting", "bad-image"]


def test_mirror_notices_a_changed_source() -> None:
    f = other("a.txt", 10, mtime=T0 + 50)
    placed = [Placed("a.txt", 10, None, "other", sources=("a.txt",), source_size=10,
                     source_mtime=T0)]
    p = plan([f], placed, [RemoteFile("a.txt", 10, T0)], Options(mirror=True))
    assert puts(p) == [("a.txt", ("a.txt",))]


def test_mirror_ignores_filter_policy_and_subfolder_and_does_not_consolidate() -> None:
    local = chain(3)
    p = plan(local, [], [], Options(mirror=True, types=frozenset({"other"}),
                                    images_since=T0 + 10_000))
    assert puts(p) == [(f.name, (f.name,)) for f in local]


# -- filter --------------------------------------------------------------------------


def test_type_filter() -> None:
    local = [*chain(2), other("notes.txt")]
    only_full = plan(local, [], [], Options(types=frozenset({"full"})))
    assert puts(only_full) == [("vol-b001.ofi", ("vol-b001.ofi",))]
    only_inc = plan(local, [], [], Options(types=frozenset({"incremental"})))
    assert puts(only_inc) == [("vol-b001-i002.ofi", ("vol-b001-i001.ofi", "vol-b001-i002.ofi"))]
    only_other = plan(local, [], [], Options(types=frozenset({"other"})))
    assert puts(only_other) == [("notes.txt", ("notes.txt",))]


# -- policies ------------------------------------------------------------------------


def test_new_images_only() -> None:
    local = [*chain(4), other("old.txt", mtime=T0), other("new.txt", mtime=T0 + 1000)]
    p = plan(local, [], [], Options(images_since=T0 + 250))  # after incremental 2
    assert puts(p) == [("vol-b001-i004.ofi", ("vol-b001-i003.ofi", "vol-b001-i004.ofi")),
                       ("new.txt", ("new.txt",))]


def test_new_sets_only() -> None:
    old, new = chain(2, gen=1), chain(1, gen=2, t0=T0 + 5000)
    p = plan([*old, *new], [], [], Options(sets_since=T0 + 1000))
    assert [r for r, _ in puts(p)] == ["vol-b002.ofi", "vol-b002-i001.ofi"]


def test_subfolder_prefixes_every_path() -> None:
    local = [*chain(2), other("n.txt")]
    p = plan(local, [], [], Options(subfolder="site-a/nightly"))
    assert [r for r, _ in puts(p)] == ["site-a/nightly/vol-b001.ofi",
                                       "site-a/nightly/vol-b001-i002.ofi",
                                       "site-a/nightly/n.txt"]


# -- continuity --------------------------------------------------------------------


def test_broken_chain_stops_at_the_break() -> None:
    local = chain(5)
    del local[3]  # incremental 3 is missing: 4 and 5 apply to nothing here
    p = plan(local, [], [], Options())
    assert puts(p) == [("vol-b001.ofi", ("vol-b001.ofi",)),
                       ("vol-b001-i002.ofi", ("vol-b001-i001.ofi", "vol-b001-i002.ofi"))]
    assert [(n.kind, n.file) for n in p.notes] == [("broken-chain", "vol-b001-i004.ofi")]
    assert p.notes[0].bad_data


def test_incomplete_image_waits() -> None:
    local = [*chain(2), LocalFile("vol-b001-i003.ofi", 77, T0, status="incomplete")]
    p = plan(local, [], [], Options())
    assert [r for r, _ in puts(p)] == ["vol-b001.ofi", "vol-b001-i002.ofi"]
    assert [(n.kind, n.bad_data) for n in p.notes] == [("waiting", False)]


def test_bad_image_is_reported_and_its_successors_wait_for_it() -> None:
    local = chain(3)
    local[2] = LocalFile(local[2].name, 5, T0, status="bad", problem="corrupt footer")
    p = plan(local, [], [], Options())
    assert [r for r, _ in puts(p)] == ["vol-b001.ofi", "vol-b001-i001.ofi"]
    kinds = sorted(n.kind for n in p.notes)
    assert kinds == ["bad-image", "broken-chain"]


def test_no_full_anywhere_is_a_broken_chain() -> None:
    local = chain(2)[1:]
    p = plan(local, [], [], Options())
    assert p.actions == () and p.notes[0].kind == "broken-chain"


def test_pruned_destination_chains_onto_the_target() -> None:
    local = chain(5)
    placed, listing = apply(plan(local[:4], [], [], Options()), local, [], [])
    p = plan(local[4:], placed, listing, Options())  # full and 1..3 deleted locally
    assert puts(p) == [("vol-b001-i005.ofi", ("vol-b001-i004.ofi", "vol-b001-i005.ofi"))]


# -- the target is checked, not trusted ----------------------------------------------


def test_target_edited_by_hand_is_replanned() -> None:
    local = chain(4)
    placed, listing = apply(plan(local[:4], [], [], Options()), local, [], [])
    placed, listing = apply(plan(local, placed, listing, Options()), local, placed, listing)
    # someone deleted the consolidated 1..3 at the target
    listing = [r for r in listing if r.path != "vol-b001-i003.ofi"]
    p = plan(local, placed, listing, Options())
    assert p.forget == ("vol-b001-i003.ofi",)
    assert puts(p) == [("vol-b001-i004.ofi", tuple(f.name for f in local[1:]))]


def test_changed_size_at_target_is_put_again() -> None:
    local = chain(1)
    placed, listing = apply(plan(local, [], [], Options()), local, [], [])
    listing = [attrs.evolve(r, size=r.size + 1) if r.path == "vol-b001.ofi" else r
               for r in listing]
    p = plan(local, placed, listing, Options())
    assert p.forget == ("vol-b001.ofi",)
    assert [r for r, _ in puts(p)] == ["vol-b001.ofi"]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5), extra=st.integers(0, 2), mirror=st.booleans(),
       victim=st.integers(0, 8), listed=st.sampled_from(["etag:replaced", "md5:0123", None]))
def test_a_file_replaced_at_the_target_is_put_again(n: int, extra: int, mirror: bool,
                                                    victim: int, listed: str | None) -> None:
    local = [*chain(n), *(other(f"o{i}.txt", 10 + i) for i in range(extra))]
    opts = Options(mirror=mirror)
    placed, listing = apply(plan(local, [], [], opts), local, [], [])
    victim %= len(listing)
    replaced = listing[victim]
    listing[victim] = attrs.evolve(replaced, checksum=listed)  # same path and size
    p = plan(local, placed, listing, opts)
    if listed == "etag:replaced":
        assert p.forget == ()
        assert p.distrust == ((replaced.path, "replaced at the target (its checksum is now "
                                              "etag:replaced)"),)
        assert [a.remote for a in p.puts] == [replaced.path], "that one file, nothing else"
        assert p.deletes == ()
        placed, listing = apply(p, local, placed, listing)
        assert plan(local, placed, listing, opts).actions == (), "and then it is settled"
    else:  # another kind of checksum, or none listed: nothing to compare
        assert (p.forget, p.actions) == ((), ())


def test_a_journal_without_checksums_trusts_size() -> None:
    local = chain(2)
    placed, listing = apply(plan(local, [], [], Options()), local, [], [])
    old = [attrs.evolve(x, remote_checksum=None) for x in placed]  # journal before v3
    assert plan(local, old, listing, Options()).actions == ()


def test_foreign_files_are_left_alone() -> None:
    local = chain(1)
    listing = [RemoteFile("README.txt", 3, T0), RemoteFile("other-job/x.ofi", 9, T0)]
    p = plan(local, [], listing, Options())
    assert p.deletes == () and all(not r.startswith(("README", "other-job"))
                                   for r, _ in puts(p))


# -- properties ------------------------------------------------------------------------


options = st.builds(
    Options,
    mirror=st.booleans(),
    types=st.sets(st.sampled_from(sorted(ALL)), min_size=1).map(frozenset),
    subfolder=st.sampled_from(["", "sub", "a/b"]),
    images_since=st.one_of(st.none(), st.integers(0, 6).map(lambda k: T0 + k * 100 - 50)),
    sets_since=st.one_of(st.none(), st.just(T0 - 1), st.just(T0 + 10_000)),
)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 6), extra=st.integers(0, 3), opts=options, rounds=st.integers(1, 3))
def test_plan_is_idempotent_and_safe(n: int, extra: int, opts: Options, rounds: int) -> None:
    local = [*chain(n), *(other(f"o{i}.txt", 10 + i) for i in range(extra))]
    foreign = [RemoteFile("foreign.bin", 1, T0)]
    placed: list[Placed] = []
    listing = list(foreign)
    for _ in range(rounds):
        p = plan(local, placed, listing, opts)
        if not opts.mirror:
            assert p.deletes == (), "only mirror mode deletes"
            prefix = opts.subfolder + "/" if opts.subfolder else ""
            assert all(a.remote.startswith(prefix) for a in p.actions)
        else:
            assert {d.remote for d in p.deletes} <= {x.remote_path for x in placed}, \
                "mirror deletes only what offsite placed"
        placed, listing = apply(p, local, placed, listing)
    settled = plan(local, placed, listing, opts)
    assert settled.actions == (), f"a second plan should have nothing to do: {settled.actions}"
    assert RemoteFile("foreign.bin", 1, T0) in listing, "foreign files are left alone"


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 4), extra=st.integers(0, 2), mirror=st.booleans(),
       victim=st.integers(0, 8), moved=st.sampled_from([0.0, 0.4, 1.5, -30.0, 86400.0]))
def test_a_file_changed_at_a_target_without_checksums_is_put_again(
        n: int, extra: int, mirror: bool, victim: int, moved: float) -> None:
    # A folder or SFTP target keeps no checksum: the modification time it
    # reported when the file was placed is the stamp.
    local = [*chain(n), *(other(f"o{i}.txt", 10 + i) for i in range(extra))]
    opts = Options(mirror=mirror)
    placed, listing = apply(plan(local, [], [], opts), local, [], [])
    placed = [attrs.evolve(x, remote_checksum=None, remote_mtime=T0) for x in placed]
    listing = [attrs.evolve(r, checksum=None) for r in listing]
    victim %= len(listing)
    changed = listing[victim]
    listing[victim] = attrs.evolve(changed, mtime=T0 + moved)
    p = plan(local, placed, listing, opts)
    if abs(moved) > 1.0:
        assert [path for path, _ in p.distrust] == [changed.path]
        assert [a.remote for a in p.puts] == [changed.path], "that one file, nothing else"
        again = plan(local, apply(attrs.evolve(p, actions=()), local, placed, listing)[0],
                     listing, opts)
        assert [a.remote for a in again.puts] == [changed.path], "the mark lasts until put"
    else:  # within a second: the same stamp, as listed to another precision
        assert (p.distrust, p.actions) == ((), ())


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 8), k=st.integers(0, 8))
def test_pending_incrementals_become_one_named_as_newest(n: int, k: int) -> None:
    k = min(k, n)
    local = chain(n)
    placed, listing = apply(plan(local[:k + 1], [], [], Options()), local, [], [])
    p = plan(local, placed, listing, Options())
    if k == n:
        assert p.actions == ()
        return
    (only,) = p.puts
    assert only.remote == local[n].name
    assert only.sources == tuple(f.name for f in local[k + 1:])
    assert (only.seq_first, only.seq_last) == (k + 1, n)
