"""Texts to callers: wait estimates, replies, surveys. Pure rules; sending is the server's."""
