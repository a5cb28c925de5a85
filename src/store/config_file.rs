//! Loading and writing `config/config.json` (ops spec §2.1) and reading `.env` (§12).
