"""Ray-specific hosting: the teacher service, env pools, RLlib wiring and runs."""
