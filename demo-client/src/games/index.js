// The game modules the demo client knows, by the schema's game name (Joined carries the
// schema: its name picks the module). A game without a module still plays with the
// defaults of game.js (no prediction).

import arena from './arena.js';
import hill from './hill.js';
import shooter from './shooter.js';

export const GAMES = Object.freeze({ arena, hill, shooter });

/** The module of game `name`, or null. */
export function gameModule(name) {
  return Object.hasOwn(GAMES, name) ? GAMES[name] : null;
}
