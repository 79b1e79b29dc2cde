import { INSTALLATION } from './install-root.js';

/** bk's own version, from package.json (recorded in every manifest). */
export const BK_VERSION: string = INSTALLATION?.version ?? '0.0.0';
