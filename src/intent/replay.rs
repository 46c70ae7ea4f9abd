//! Replay of recorded pedestrian tracks (ETH/UCY) against the engine.
