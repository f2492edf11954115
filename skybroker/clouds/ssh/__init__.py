"""The `ssh` cloud: bring-your-own hosts from pools in `<home>/config.yaml`, reached with paramiko."""
