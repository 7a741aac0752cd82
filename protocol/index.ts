export * from './clientFrames.js';
export * from './closeCodes.js';
export * from './codec.js';
export * from './errorCodes.js';
export * from './refusal.js';
export * from './serverFrames.js';
export * from './toolLimits.js';
export * from './version.js';
