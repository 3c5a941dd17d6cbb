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


def load_file(spec: str):
  """`get_config(arg)` of a config given as "path/to/config.py[:arg]", the `--config` syntax of `lrm_jax.main`
  (config files are loaded by path, as config_flags does, not imported as a package)."""
  import importlib.util
  import os
  path, _, arg = spec.partition(":")
  path = os.path.normpath(os.path.abspath(path))
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  module_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def load_sibling(this_file: str, name: str, arg: str | None = None):
  """`get_config(arg)` of another config file in the same folder as `this_file`, e.g.
  load_sibling(__file__, "../reward_data.py", "seed=1")."""
  import os
  path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
  return load_file(path if arg is None else f"{path}:{arg}")
