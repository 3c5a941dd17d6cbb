import pytest

from lrm_jax import jobs
from lrm_jax.utils import config_args


def test_parse_arg_types_and_flags():
  c = config_args.parse_arg("episodes=8,small,scale=0.5", episodes=200, small=False, scale=1.0, name="x")
  assert c.episodes == 8 and c.small is True and c.scale == 0.5 and c.name == "x"


def test_parse_arg_unknown_key_is_one_line_error():
  with pytest.raises(ValueError, match="unknown config arg 'epsiodes'"):
    config_args.parse_arg("epsiodes=8", episodes=200)


def test_unknown_job_names_choices():
  with pytest.raises(ValueError, match="config.job: expected one of .*datagen.*, got unknown job 'nope'"):
    jobs.get("nope")


def test_load_file_takes_the_config_flag_syntax(tmp_path):
  import os
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  c = config_args.load_file(os.path.join(root, "configs", "reward_model", "cpu_demo.py") + ":steps=7,res=32")
  assert c.total_steps == 7 and c.image_size == 32 and c.eval_data.image_size == 32  # its sibling configs get it too
  with pytest.raises(config_args.ConfigError, match="config file: expected an existing .*nope.py"):
    config_args.load_file(str(tmp_path / "nope.py") + ":steps=1")
