pytest_plugins = ["simulator.pytest_plugin"]
