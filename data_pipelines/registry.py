"""Reader formats by name, so a mixture config can name sources as plain strings."""
import importlib

# format name -> "module:Class"; imported lazily so a config naming only HDF5 sources never loads video code.
READERS = {
    "oxe": "data_pipelines.oxe:OxeReader",
    "libero_hdf5": "data_pipelines.libero:LiberoHdf5Reader",
    "libero_rlds": "data_pipelines.libero:LiberoRldsReader",
    "robocasa": "data_pipelines.robocasa:RoboCasaReader",
    "lrm_bench": "data_pipelines.suite_rlds:SuiteRldsReader",
    "egodex": "data_pipelines.egodex:EgoDexReader",
    "hoi4d": "data_pipelines.hoi4d:Hoi4dReader",
    "ssv2": "data_pipelines.ssv2:Ssv2Reader",
    "epic_kitchens": "data_pipelines.epic:EpicKitchensReader",
}


def reader_class(fmt: str):
  if fmt not in READERS:
    raise ValueError(f"source format: expected one of {sorted(READERS)}, got {fmt!r}")
  module, _, name = READERS[fmt].partition(":")
  return getattr(importlib.import_module(module), name)


def make_reader(fmt, path, **kwargs):
  """`fmt` is a registered name, or any callable(path, **kwargs) returning an iterable of Trajectory."""
  factory = fmt if callable(fmt) else reader_class(fmt)
  return factory(path, **kwargs)
