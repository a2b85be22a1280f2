//! What a checkpoint says about itself beyond its architecture: whether it is an
//! instruction-tuned model (which the answer pipeline prompts with the chat template) or a base
//! model (prompted completion-style).

use std::path::Path;

use candle_core::quantized::gguf_file;

/// Instruction-tuned checkpoints ship a chat template (GGUF `tokenizer.chat_template`, or an HF
/// `chat_template.jinja` / `chat_template` in `tokenizer_config.json`) or say `it` in their name.
pub fn instruction_tuned(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("chat_template.jinja").is_file()
            || path.join("chat_template.json").is_file()
            || std::fs::read_to_string(path.join("tokenizer_config.json"))
                .is_ok_and(|t| t.contains("\"chat_template\""))
            || named_it(&path.file_name().unwrap_or_default().to_string_lossy());
    }
    let Ok(file) = std::fs::File::open(path) else { return false };
    let Ok(content) = gguf_file::Content::read(&mut std::io::BufReader::with_capacity(1 << 20, file)) else {
        return false;
    };
    let text = |k: &str| content.metadata.get(k).and_then(|v| v.to_string().ok()).cloned();
    content.metadata.contains_key("tokenizer.chat_template")
        || ["general.finetune", "general.name"].iter().filter_map(|k| text(k)).any(|n| named_it(&n))
        || named_it(&path.file_stem().unwrap_or_default().to_string_lossy())
}

/// `gemma-3-4b-it`, `medgemma-1.5-4b-it-Q4_K_M`, `Instruct`...
fn named_it(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "it" || w == "instruct" || w == "chat")
}

#[cfg(test)]
mod tests {
    use super::named_it;

    #[test]
    fn reads_names() {
        assert!(named_it("medgemma-1.5-4b-it"));
        assert!(named_it("gemma-3-270m-it-Q4_K_M"));
        assert!(!named_it("Gemma 3 270m"));
        assert!(!named_it("gemma-3-270m-q4_k_m"));
        assert!(!named_it("italian-base"));
    }
}
