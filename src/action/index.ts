/** Entry of the main step. */
import { startMain } from './entry.ts';

startMain();
