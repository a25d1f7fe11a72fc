"""Subcommands of the ``aloe-ros`` console command (registry: aloe_ros.cli.COMMANDS)."""
