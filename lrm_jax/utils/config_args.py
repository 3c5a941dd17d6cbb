"""big_vision-style `get_config(arg)` argument parsing: "key=value,flag,key2=value2" -> ConfigDict."""
import ml_collections


def _convert(value: str, default):
  if isinstance(default, bool):
    if value.lower() in ("", "true", "1", "yes"):
      return True
    if value.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"config arg expected a boolean, got {value!r}")
  if default is None:
    return value
  return type(default)(value)


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses `arg` against `defaults`; a bare word sets a boolean to True. Unknown keys are an error."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config arg {key!r}; expected one of {sorted(defaults)}")
    out[key] = _convert(value, defaults[key])
  return out


def load_sibling(this_file: str, name: str, arg: str | None = None):
  """`get_config(arg)` of another config file in the same folder as `this_file` (config files are loaded by path,
  as config_flags does, not imported as a package), e.g. load_sibling(__file__, "../reward_data.py", "seed=1")."""
  import importlib.util
  import os
  path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(this_file)), name))
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)
