"""Human intervention, ROS-free: pad layouts, debounced buttons, takeover and e-stop state,
human joint-space commands, the command mux and the episode lifecycle.

``aloe_ros.nodes.teleop_node`` wires :class:`aloe_ros.teleop.controller.TeleopController` to
topics; everything here is plain Python + numpy and is tested without ROS.
"""
