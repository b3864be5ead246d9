"""The ``sketchrl`` command line: subcommands only parse arguments and call the library."""
