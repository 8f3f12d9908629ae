"""Small task envs the tests name by import path (``"plugin_envs.dict_obs:DictReachEnv"``)."""
