"""Plugin discovery and the per-target plugin manager: the one place both are built.

stevedore finds what is installed (entry-point group ``offsite.targets``,
one entry point per URL scheme); pluggy validates and calls it. For each
plugin, :func:`build_manager` makes a ``PluginManager`` with the hookspecs,
the core's hook wrappers and exactly that one transport, then runs
``check_pending()``, so a misspelled hook or a wrong signature is refused
when the plugin loads, with the plugin's distribution named.

:func:`discover_for` loads what a configuration's targets use and checks
their ``[job.target.options]`` against the keys each plugin declares with
its ``options`` hook, so a misspelt option stops the configuration, not an
upload (:func:`check_options`).

Nothing here is fatal to the others: a plugin that fails to import, fails
validation, claims an invalid or an already-claimed scheme, or is switched off
with ``OFFSITE_DISABLED_PLUGINS`` (comma-separated schemes or distribution
names) is recorded with its reason and listed by ``offsite targets``. A
configuration may still name its scheme: each target that uses it fails on
its own with :meth:`Registry.unusable`'s message (exit code 2), while the
targets of working plugins run.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import pluggy
from stevedore import ExtensionManager, NamedExtensionManager

from offsite import PROJECT, hookspecs
from offsite.errors import ConfigError, PluginError, PluginMissing

if TYPE_CHECKING:
    from offsite.config import Config

#: The entry-point group target plugins register under.
GROUP = "offsite.targets"
#: Comma-separated schemes or distribution names not to load.
DISABLE_ENV = "OFFSITE_DISABLED_PLUGINS"
#: RFC 3986 scheme syntax, lower case (schemes are case-insensitive; we store them lowered).
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")

#: The official plugin for each scheme, for "install X" hints.
OFFICIAL = {
    "file": "offsite-local",
    "smb": "offsite-cifs",
    "cifs": "offsite-cifs",
    "webdav": "offsite-webdav",
    "webdavs": "offsite-webdav",
    "ftp": "offsite-ftp",
    "ftps": "offsite-ftp",
    "sftp": "offsite-sftp",
    "s3": "offsite-s3",
}

#: Hook wrappers the core registers in every target's manager, before the
#: transport, for concerns that cut across protocols (pluggy ``wrapper=True``
#: hookimpls around ``put``/``get``, which may wrap the ``transfer``'s source
#: stream). The engine's bandwidth limiter and byte accounting go here.
CORE_WRAPPERS: tuple[object, ...] = ()

Status = Literal["ok", "failed", "disabled"]


@attrs.frozen
class PluginInfo:
    """One installed target plugin, as ``offsite targets`` lists it."""

    scheme: str
    distribution: str
    version: str
    entry_point: str
    status: Status
    reason: str = ""
    hooks: tuple[str, ...] = ()
    #: The target options the plugin declares (name -> help), None when it
    #: declares none (then its options are not checked).
    options: Mapping[str, str] | None = attrs.field(default=None, eq=False)
    #: What the plugin's ``capabilities`` hook declares (``{"resume": False}``);
    #: empty when it has no such hook: everything is taken as possible.
    capabilities: Mapping[str, bool] = attrs.field(factory=dict, eq=False)

    @property
    def resumable(self) -> bool:
        """Whether ``put`` continues an interrupted upload (the ``resume``
        capability, True unless the plugin says otherwise)."""
        return bool(self.capabilities.get("resume", True))

    @property
    def parallel_gets(self) -> bool:
        """Whether one connection serves several open ``get`` streams (the
        ``parallel_gets`` capability, False unless the plugin says so)."""
        return bool(self.capabilities.get("parallel_gets", False))

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def build_manager(plugin: object, *, scheme: str, distribution: str,
                  wrappers: Sequence[object] = ()) -> pluggy.PluginManager:
    """Build the manager for one transport: specs, core wrappers, the plugin.

    :param wrappers: this target's own hook wrappers (its bandwidth limit),
        registered after the core's and before the transport.

    :raises PluginError: the plugin has a hook with a wrong signature, an
        unknown hook (typo), or lacks a required hook.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for wrapper in (*CORE_WRAPPERS, *wrappers):
        pm.register(wrapper)

    def refuse(detail: str) -> PluginError:
        return PluginError(detail, plugin=scheme, distribution=distribution)

    try:
        pm.register(plugin, name=scheme)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # pluggy's message spans lines (definition, then the reason): keep it one line.
        raise refuse(" ".join(str(exc).split())) from exc
    # pluggy lets an implementation take fewer arguments than the spec; a
    # `get` without `offset` would then ignore offsets silently. Refuse it.
    for caller in pm.get_hookcallers(pm.get_plugin(scheme)) or []:
        spec = caller.spec
        for impl in caller.get_hookimpls():
            if impl.plugin_name != scheme or spec is None:
                continue
            left_out = [a for a in spec.argnames if a not in impl.argnames]
            if left_out:
                raise refuse(f"hook {caller.name} must take all of its arguments "
                             f"({', '.join(spec.argnames)}); it leaves out {', '.join(left_out)}")
    implemented = implemented_hooks(pm, scheme)
    missing = [name for name in hookspecs.REQUIRED if name not in implemented]
    if missing:
        raise refuse(f"does not implement the required hook(s) {', '.join(missing)}")
    return pm


def implemented_hooks(pm: pluggy.PluginManager, name: str) -> tuple[str, ...]:
    """The hooks the plugin registered as ``name`` implements, sorted."""
    plugin = pm.get_plugin(name)
    callers = pm.get_hookcallers(plugin) or []
    return tuple(sorted(caller.name for caller in callers))


@attrs.frozen
class Registry:
    """What discovery found: every plugin's info, and the loaded ones' objects."""

    plugins: tuple[PluginInfo, ...]
    loaded: Mapping[str, object] = attrs.field(repr=False, factory=dict)

    def info(self, scheme: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.scheme == scheme), None)

    def manager(self, scheme: str, wrappers: Sequence[object] = ()
                ) -> tuple[PluginInfo, pluggy.PluginManager]:
        """A fresh manager for one target using ``scheme``.

        :raises PluginMissing: no installed plugin handles that scheme; the
            message says what to install.
        :raises PluginError: the installed plugin is switched off or failed
            to load (:meth:`unusable`).
        """
        scheme = scheme.lower()
        info = self.info(scheme)
        if info is None:
            hint = OFFICIAL.get(scheme, f"a plugin for the '{scheme}' scheme")
            raise PluginMissing(plugin=scheme, distribution=hint)
        if info.status != "ok":
            raise self.unusable(info)
        pm = build_manager(self.loaded[scheme], scheme=scheme, distribution=info.distribution,
                           wrappers=wrappers)
        return info, pm

    def unusable(self, info: PluginInfo) -> PluginError:
        """Why a target of ``info``'s scheme cannot run, and what brings it back.

        The one message ``check``, ``plan`` and ``run`` give for such a target
        (the others go on): which plugin, why (what ``offsite targets``
        shows), and the fix, which for a plugin switched off names the word
        to take out of :data:`DISABLE_ENV`.
        """
        if info.status == "disabled":
            listed = [w for w in (info.scheme, info.distribution) if w in _disabled()]
            words = " and ".join(f"'{w}'" for w in listed or [info.scheme])
            return PluginError(
                f"disabled: {info.reason}", plugin=info.scheme,
                distribution=info.distribution,
                fix=f"remove {words} from {DISABLE_ENV} to use it again (or remove its "
                    "targets from the configuration)")
        claimants = sorted(p.distribution for p in self.plugins if p.scheme == info.scheme)
        return PluginError(
            f"failed to load: {info.reason or 'unknown reason'}", plugin=info.scheme,
            distribution=info.distribution,
            # Reinstalling either of two distributions that claim one scheme changes nothing.
            fix=f"uninstall all but one of {', '.join(claimants)}" if len(claimants) > 1
            else None)


@attrs.frozen
class _Candidate:
    """One entry point in the group, and the distribution that declares it."""

    name: str
    value: str
    distribution: str
    version: str

    def info(self, status: Status, reason: str = "", hooks: tuple[str, ...] = (),
             options: Mapping[str, str] | None = None,
             capabilities: Mapping[str, bool] | None = None) -> PluginInfo:
        return PluginInfo(self.name, self.distribution, self.version, self.value,
                          status, reason, hooks, options, dict(capabilities or {}))


def _candidates() -> list[_Candidate]:
    # stevedore's cached entry points do not know their distribution; ask
    # importlib.metadata, which stevedore reads underneath. Only the group's
    # entry points are looked at, and only their distributions' metadata is
    # parsed (parsing all of them cost 40 ms per call with 100 installed).
    found: dict[tuple[str, str, str], _Candidate] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist
        name = (dist.metadata["Name"] if dist is not None else None) or "?"
        version = (dist.version if dist is not None else None) or "?"
        # The same distribution seen twice on sys.path counts once.
        found.setdefault((ep.name, ep.value, name), _Candidate(ep.name, ep.value, name, version))
    return sorted(found.values(), key=lambda c: (c.name, c.distribution))


def _disabled() -> set[str]:
    return {word.strip() for word in os.environ.get(DISABLE_ENV, "").split(",") if word.strip()}


def _import(names: set[str]) -> tuple[dict[tuple[str, str], object], dict[tuple[str, str], str]]:
    """Import the named entry points with stevedore: (objects, failures)."""
    failures: dict[tuple[str, str], str] = {}

    def on_failure(_mgr: Any, ep: importlib.metadata.EntryPoint, err: BaseException) -> None:
        failures[(ep.name, ep.value)] = f"failed to import: {type(err).__name__}: {err}"

    # stevedore keeps entry points in a class-level cache; drop ours so that
    # discovery always reflects what is installed now.
    ExtensionManager.ENTRY_POINT_CACHE.pop(GROUP, None)
    # stevedore logs "Could not load NAME" for every name that did not load,
    # on top of the failure reported above: offsite says it once, in its own
    # words (and nothing at all under --quiet). A callable that does nothing
    # silences it in every stevedore version (older ones fall back to logging
    # when the callback is None).
    manager: Any = NamedExtensionManager(
        GROUP, names=sorted(names), on_load_failure_callback=on_failure,
        on_missing_entrypoints_callback=_not_missing,
    )
    objects = {(ext.name, ext.entry_point.value): ext.plugin for ext in manager.extensions}
    return objects, failures


def _not_missing(_names: Iterable[str]) -> None:
    """Nothing to add: each name that did not load has its failure recorded."""


def _declared_options(pm: pluggy.PluginManager, c: _Candidate) -> dict[str, str] | None:
    """What the plugin's ``options`` hook declares (None: no hook).

    :raises PluginError: the hook fails or does not return names and texts.
    """
    try:
        declared = pm.hook.options()
    except Exception as exc:
        raise PluginError(f"hook options failed: {type(exc).__name__}: {exc}",
                          plugin=c.name, distribution=c.distribution) from exc
    if declared is None:
        return None
    if not isinstance(declared, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in declared.items()):
        raise PluginError("hook options must return a mapping of option names to texts",
                          plugin=c.name, distribution=c.distribution)
    return dict(declared)


def _declared_capabilities(pm: pluggy.PluginManager, c: _Candidate) -> dict[str, bool]:
    """What the plugin's ``capabilities`` hook declares ({}: no hook).

    :raises PluginError: the hook fails or does not return names and booleans.
    """
    try:
        declared = pm.hook.capabilities()
    except Exception as exc:
        raise PluginError(f"hook capabilities failed: {type(exc).__name__}: {exc}",
                          plugin=c.name, distribution=c.distribution) from exc
    if declared is None:
        return {}
    if not isinstance(declared, Mapping) or not all(
            isinstance(k, str) and isinstance(v, bool) for k, v in declared.items()):
        raise PluginError("hook capabilities must return a mapping of names to booleans",
                          plugin=c.name, distribution=c.distribution)
    return dict(declared)


def check_options(config: Config, registry: Registry) -> None:
    """Refuse target options that the target's plugin does not declare.

    A plugin without the ``options`` hook, or one that did not load (its
    own error is reported where the target is used), is not checked.

    :raises ConfigError: the first unknown option, naming the file, the key
        (``job[0].target[1].options.cafile``), the closest declared name and
        the plugin's options.
    """
    for index, job in enumerate(config.jobs):
        for number, target in enumerate(job.targets):
            info = registry.info(target.scheme)
            if info is None or info.status != "ok" or info.options is None:
                continue
            for name in target.options:
                if name in info.options:
                    continue
                close = difflib.get_close_matches(name, list(info.options), n=1)
                known = ", ".join(sorted(info.options)) or "none"
                raise ConfigError(
                    f"{info.distribution} takes no option {name!r}"
                    + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (its options: {known})",
                    file=config.path, key=f"job[{index}].target[{number}].options.{name}",
                    fix="correct the name, or remove it; `offsite targets --json` lists each "
                        "plugin's options")


def discover_for(config: Config) -> Registry:
    """The plugins ``config``'s targets use, imported, with their options checked.

    :raises ConfigError: from :func:`check_options`.
    """
    registry = discover({t.scheme for j in config.jobs for t in j.targets})
    check_options(config, registry)
    return registry


def installed_schemes() -> set[str]:
    """The schemes installed plugins claim, without importing any plugin: what
    a config's URLs are checked against. Plugins switched off with
    :data:`DISABLE_ENV` count: they are installed, and a target of theirs
    fails on its own (:meth:`Registry.unusable`), not the whole configuration."""
    return {c.name for c in _candidates() if SCHEME.match(c.name)}


def discover(schemes: Collection[str] | None = None) -> Registry:
    """Find, import and validate every installed target plugin.

    Never raises for a bad plugin: its :class:`PluginInfo` says why it is
    unusable, and the others load as usual. Plugins that are switched off or
    whose entry-point name is not a URL scheme are not even imported.

    :param schemes: import and list only the plugins for these schemes (what
        a config's targets use): a job over SFTP does not pay for importing
        boto3. ``None``: all of them, as ``offsite targets`` lists them.
    """
    disabled = _disabled()
    infos: list[PluginInfo] = []
    wanted: list[_Candidate] = []
    only = None if schemes is None else {s.lower() for s in schemes}
    for c in _candidates():
        if only is not None and c.name not in only:
            continue
        if not SCHEME.match(c.name):
            infos.append(c.info("failed", f"entry point name {c.name!r} is not a valid URL "
                                "scheme (lower-case letters, digits, '+', '-', '.'; "
                                "starting with a letter)"))
        elif c.name in disabled or c.distribution in disabled:
            infos.append(c.info("disabled", f"listed in {DISABLE_ENV}"))
        else:
            wanted.append(c)

    claims: dict[str, list[str]] = {}
    for c in wanted:
        claims.setdefault(c.name, []).append(c.distribution)
    objects, failures = _import({c.name for c in wanted})

    loaded: dict[str, object] = {}
    for c in wanted:
        key = (c.name, c.value)
        if len(claims[c.name]) > 1:
            others = " and ".join(sorted(claims[c.name]))
            infos.append(c.info("failed", f"scheme '{c.name}' is claimed by {others}: "
                                "uninstall all but one"))
        elif key in failures or key not in objects:
            infos.append(c.info("failed", failures.get(key, "entry point was not loaded")))
        else:
            try:
                pm = build_manager(objects[key], scheme=c.name, distribution=c.distribution)
                options = _declared_options(pm, c)
                capabilities = _declared_capabilities(pm, c)
            except PluginError as exc:
                infos.append(c.info("failed", exc.detail))
                continue
            loaded[c.name] = objects[key]
            infos.append(c.info("ok", hooks=implemented_hooks(pm, c.name), options=options,
                                capabilities=capabilities))
    infos.sort(key=lambda p: (p.scheme, p.distribution))
    return Registry(plugins=tuple(infos), loaded=loaded)
