"""pip-only install of aloe_ros (see README). On a ROS 2 machine colcon builds CMakeLists.txt.

Console scripts: ``aloe-ros`` and one executable per node, named as in aloe_ros.nodes.NODE_MODULES
(the same names ``ros2 run aloe_ros <node>`` uses).
"""

import ast
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def node_modules() -> dict:
    """Read NODE_MODULES without importing the package (no ROS needed to build)."""
    tree = ast.parse((HERE / "aloe_ros" / "nodes" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "NODE_MODULES":
            return ast.literal_eval(node.value)
    raise RuntimeError("NODE_MODULES not found in aloe_ros/nodes/__init__.py")


setup(
    name="aloe_ros",
    version="0.1.0",
    description="ALOE real-robot RL for VLA policies as ROS 2 nodes",
    license="Apache-2.0",
    python_requires=">=3.12",
    packages=find_packages(include=["aloe_ros", "aloe_ros.*"]),
    package_data={"aloe_ros": ["py.typed"]},
    # Dependencies are pinned in requirements.txt (installed by scripts/bootstrap_venv.sh);
    # rclpy and the messages come from ROS 2 wheels or a ROS install, not from here.
    install_requires=[],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/aloe_ros"]),
        ("share/aloe_ros", ["package.xml"]),
    ],
    entry_points={
        "console_scripts": ["aloe-ros = aloe_ros.cli:main"]
        # Every node starts through aloe_ros.nodes.boot (a stop during its imports exits 0).
        + [f"{name} = aloe_ros.nodes.boot:console_main" for name in node_modules()],
    },
)
