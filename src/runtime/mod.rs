//! The actor runtime: supervisors, the agent, the Envelope bus and the internal API.
