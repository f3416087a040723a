"""An installed app whose ``messages_webhooks`` module the adapter imports at start-up."""
