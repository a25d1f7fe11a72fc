"""Reliability and safety, measured: the fault suite behind ``aloe-ros bench faults``.

probe (the only rclpy module: listens to and injects into a running graph), session (the sim
graph under test), faults (kill -9 trials), estop (e-stop latency), bad_inputs (live bad
inputs), offline (YAML, bags, clocks), checks (ROS-free rules), report (tables), suite (all).
"""
