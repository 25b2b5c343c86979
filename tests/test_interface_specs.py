"""Every interface the package defines has specs Nipype's own checks accept.

The interfaces are found by walking :mod:`nipype_ward.interfaces` and its
submodules for :class:`~nipype.interfaces.base.BaseInterface` subclasses, so
an interface added later is checked without being listed here.

The rules are those of Nipype's ``tools/checkspecs.py`` (the script Nipype
runs over its own interfaces; it lives in Nipype's repository, not in the
installed package, so its checks are restated here):

* every metadata key of an input or output trait is one Nipype knows
  (its list of allowed keys, the traits' built-in ones, the interface's
  ``_additional_metadata`` and the keys of a parent trait);
* no input says ``mandatory=False`` or ``usedefault=False`` (leave them out);
* an input whose default is not the trait type's empty value says
  ``usedefault`` (or is tied to others by ``requires``/``xor``), except
  Enum, Tuple, compound traits and a Range whose default is its low end.

One key is added to Nipype's list: ``extensions``, which Nipype's own
``File`` trait sets on every file trait (``checkspecs.py`` predates it, and
would report every ``File`` of Nipype itself).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from nipype.interfaces.base import BaseInterface

import nipype_ward.interfaces

#: Metadata keys checkspecs.py allows on a trait.
ALLOWED_KEYS = {
    "desc", "genfile", "xor", "requires", "nohash", "argstr", "position", "mandatory",
    "copyfile", "usedefault", "sep", "hash_files", "deprecated", "new_name", "min_ver",
    "max_ver", "name_source", "name_template", "keep_extension", "units", "output_name",
}
#: Keys traits set themselves, which checkspecs.py skips.
BUILT_IN_KEYS = {"type", "copy", "parent", "instance_handler", "comparison_mode", "array",
                 "default", "editor"}
#: Set by Nipype's File trait on every file trait (see the module's docstring).
NIPYPE_FILE_KEYS = {"extensions"}
#: Trait types checkspecs.py does not ask to declare usedefault for their default.
DEFAULT_EXEMPT_TYPES = {"TraitCompound", "Tuple", "Enum"}


def _interfaces():
    """Every BaseInterface subclass defined in nipype_ward.interfaces or a submodule."""
    package = nipype_ward.interfaces
    modules = [package] + [importlib.import_module(info.name) for info in
                           pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    found = {}
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseInterface) and cls.__module__.startswith(package.__name__):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


INTERFACES = _interfaces()


def _traits(spec):
    """The spec's own traits, as checkspecs.py lists them (transient ones left out)."""
    return sorted(spec().traits(transient=None).items())


def _bad_keys(interface, spec) -> list[str]:
    bad = []
    for name, trait in _traits(spec):
        allowed = ALLOWED_KEYS | BUILT_IN_KEYS | NIPYPE_FILE_KEYS \
            | set(interface._additional_metadata)
        if "parent" in trait.__dict__:
            allowed |= set(trait.parent.__dict__)
        bad += [f"{spec.__name__}.{name}: unknown metadata {key!r}"
                for key in trait.__dict__ if key not in allowed]
    return bad


def _bad_inputs(interface) -> list[str]:
    bad = []
    for name, trait in _traits(interface.input_spec):
        meta = trait.__dict__
        where = f"{interface.input_spec.__name__}.{name}"
        if "mandatory" in meta and trait.mandatory is not None and not trait.mandatory:
            bad.append(f"{where}: mandatory=False")
        if "usedefault" in meta and meta["usedefault"] is False:
            bad.append(f"{where}: usedefault=False")
        kind = type(trait.trait_type).__name__
        if (kind not in DEFAULT_EXEMPT_TYPES and trait.default
                and not {"usedefault", "requires", "xor"} & set(meta)):
            if kind == "Range" and trait.default == trait.trait_type._low:
                continue
            bad.append(f"{where}: default value is set, no value for usedefault")
    return bad


def test_the_walk_finds_every_interface():
    """At least those the package exports, and the sinks and BIDS steps beside them."""
    names = {cls.__name__ for cls in INTERFACES}
    assert set(nipype_ward.interfaces.__all__) <= names
    assert {"DerivativesSink", "AtlasSink", "SplitHemispheres", "ParcelTable"} <= names
    assert len(INTERFACES) >= 28


@pytest.mark.parametrize("interface", INTERFACES, ids=lambda cls: cls.__name__)
def test_every_trait_has_a_desc(interface):
    missing = [f"{spec.__name__}.{name}"
               for spec in (interface.input_spec, interface.output_spec) if spec is not None
               for name, trait in _traits(spec)
               if not (isinstance(trait.desc, str) and trait.desc.strip())]
    assert not missing, f"{interface.__name__}: no desc on {missing}"


@pytest.mark.parametrize("interface", INTERFACES, ids=lambda cls: cls.__name__)
def test_specs_pass_nipypes_checkspecs(interface):
    bad = _bad_keys(interface, interface.input_spec) + _bad_inputs(interface)
    if interface.output_spec is not None:
        bad += _bad_keys(interface, interface.output_spec)
    assert not bad, f"{interface.__name__}: " + "; ".join(bad)


def test_the_checks_find_what_checkspecs_finds():
    """Each rule fails on a spec that breaks it (the checks are not vacuous)."""
    from nipype.interfaces.base import (
        BaseInterfaceInputSpec,
        File,
        SimpleInterface,
        TraitedSpec,
        traits,
    )

    class _BadInputSpec(BaseInterfaceInputSpec):
        typo = File(exists=True, mandatory=True, dec="a misspelled desc")
        optional = traits.Int(mandatory=False, desc="says mandatory=False")
        unused = traits.Bool(True, usedefault=False, desc="says usedefault=False")
        silent = traits.Float(0.5, desc="a default the interface never uses")
        fine = traits.Range(low=1, high=3, desc="default at its low end")

    class _BadOutputSpec(TraitedSpec):
        out = File(desc="fine")
        no_desc = File()

    class Bad(SimpleInterface):
        input_spec = _BadInputSpec
        output_spec = _BadOutputSpec

    found = _bad_keys(Bad, Bad.input_spec) + _bad_inputs(Bad)
    assert found == [
        "_BadInputSpec.typo: unknown metadata 'dec'",
        "_BadInputSpec.optional: mandatory=False",
        "_BadInputSpec.silent: default value is set, no value for usedefault",
        "_BadInputSpec.unused: usedefault=False",
    ]
    with pytest.raises(AssertionError, match=r"no desc on \['_BadInputSpec.typo', "
                                             r"'_BadOutputSpec.no_desc'\]"):
        test_every_trait_has_a_desc(Bad)
