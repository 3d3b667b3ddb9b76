//! crm-bot
