//! Network edges (Telegram, Matrix, the direct WebSocket API). Each transport is an actor that
//! registers a delivery adapter on its agent's Bus; none exists yet in this build.
