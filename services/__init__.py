"""Process layer: the service catalog and the commands that run the platform locally."""
