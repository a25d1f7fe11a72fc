"""ros2 launch aloe_ros insertion.launch.py [sim:=true] [record:=true|false] [config:=FILE]

Starts the nodes listed in config/insertion.yaml (MuJoCo ALOHA sim, insertion) with that
file as their parameter source.
"""

from aloe_ros.launch_description import generate_task_launch_description


def generate_launch_description():  # noqa: ANN201 - the launch API's entry point
    return generate_task_launch_description("insertion")
