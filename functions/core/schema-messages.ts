/**
 * The English messages of zod's issues ("Too small: expected number to be >=1", "Unrecognized key: ..."),
 * for the schemas written with `zod/mini`. The mini build ships without a locale, so an issue would say
 * only "Invalid input"; zod's classic build, which sets this locale itself, is about twenty times the code
 * and ~10 MB of a function's memory at start (issue 13). Every file that builds a schema imports this
 * module, so the messages are set before any schema parses.
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());
