//! One integration-test binary (faster to link; one set of helpers).

mod answer;
mod bad_input;
mod carebundle;
mod cli;
mod consistency;
mod conversation;
mod gemma3;
mod gemma3_real;
mod gemma3_vision;
mod grounding;
mod helpers;
mod identity;
mod images;
mod ingest;
mod isolation;
mod large_text;
mod load;
mod logs;
mod normalise;
mod remote;
mod retrieval;
mod scripted;
mod server;
mod sync;
mod tokenizer;
mod writers;
