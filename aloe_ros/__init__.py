"""aloe_ros: ALOE real-robot RL for VLA policies, as ROS 2 nodes.

The generated messages (``aloe_ros.msg``) and this Python code may live in two directories:
colcon installs both into one; the pip-only install builds the messages into the venv and
installs the code from the checkout. Extending the package path lets either half find the other.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
