"""Notification (反馈/回访): keeps the customer informed through their own channel."""
