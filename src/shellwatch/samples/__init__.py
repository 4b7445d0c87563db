"""Bundled sample traffic and the factory that writes Elastic Defend-shaped ECS documents."""
