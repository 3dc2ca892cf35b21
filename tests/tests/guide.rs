//! `docs/GAME_GUIDE.md` shows the coins example as it is: its code blocks marked
//! `<!-- coins/game.rs -->` are `server/examples/coins/game.rs` up to its tests, in order
//! and byte for byte (blocks joined by one blank line), the block marked
//! `<!-- coins/main.rs -->` is `main.rs`, and the start-up error it quotes is the one the
//! server gives for that declaration mistake. README's "Writing a game" links the page.

use std::path::PathBuf;

use ticksync_protocol::Messages;
use ticksync_server::game::{Ctx, Game, NoMessages, PlayerInput, Writer, factory};

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The contents of the code blocks that follow the line `<!-- {marker} -->`, in order.
fn blocks(doc: &str, marker: &str) -> Vec<String> {
    let open = format!("<!-- {marker} -->\n```rust\n");
    doc.match_indices(&open)
        .map(|(at, _)| {
            let body = &doc[at + open.len()..];
            let end = body.find("\n```\n").expect("a closed code block");
            format!("{}\n", &body[..end])
        })
        .collect()
}

#[test]
fn the_guide_shows_the_coins_game_byte_for_byte() {
    let doc = read("docs/GAME_GUIDE.md");
    let source = read("server/examples/coins/game.rs");
    let game = source
        .split_once("\n#[cfg(test)]")
        .map_or(source.as_str(), |(game, _)| game);
    let shown = blocks(&doc, "coins/game.rs");
    assert!(shown.len() >= 5, "the game is shown in pieces");
    let joined = shown.join("\n");
    if joined != game {
        let line = joined
            .lines()
            .zip(game.lines())
            .position(|(a, b)| a != b)
            .map_or(joined.lines().count().min(game.lines().count()), |i| i);
        panic!(
            "docs/GAME_GUIDE.md's game.rs blocks differ from the example from line {}: \
             update the blocks to server/examples/coins/game.rs",
            line + 1
        );
    }
    assert_eq!(
        blocks(&doc, "coins/main.rs"),
        [read("server/examples/coins/main.rs")],
        "docs/GAME_GUIDE.md's main.rs block"
    );
    let readme = read("README.md");
    let writing = readme
        .split_once("## Writing a game")
        .expect("README has a Writing a game section")
        .1;
    let writing = writing.split_once("\n## ").map_or(writing, |(s, _)| s);
    assert!(
        writing.contains("docs/GAME_GUIDE.md"),
        "README links the guide"
    );
}

#[derive(Messages, Debug, Clone, PartialEq)]
enum Thing {
    Runner {
        // The guide's example mistake: more than a u8 holds.
        #[state(range = 0..=300)]
        speed: u8,
    },
}

struct Mistaken;

impl Game for Mistaken {
    const NAME: &'static str = "coins";
    type Entity = Thing;
    type Lobby = ();
    type Private = ();
    type Input = ();
    type Message = NoMessages;
    type Event = NoMessages;
    fn step(&mut self, _: &mut Ctx<'_, NoMessages>, _: &[PlayerInput<()>], _: u32, _: f32) {}
    fn write(&self, _: &mut Writer<'_, Self>) {}
}

#[test]
fn the_guide_quotes_the_start_up_error_of_a_declaration_mistake() {
    let Err(error) = factory(|_| Ok(Mistaken)) else {
        panic!("a u8 with range 0..=300 was accepted");
    };
    let quoted = format!("Caused by:\n    {error}\n```");
    let doc = read("docs/GAME_GUIDE.md");
    assert!(
        doc.contains(&quoted),
        "docs/GAME_GUIDE.md should quote the error as:\n{quoted}"
    );
}
