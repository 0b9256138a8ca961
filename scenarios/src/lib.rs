//! Scenario format (TOML) and the scenario files, runnable on the simulator and the netns harness.
