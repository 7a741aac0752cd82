import { describe, expect, it } from 'vitest';
import { Followers } from '../../server/gateway/Followers.js';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Followers', () => {
  it('abandons a generation only once its last follower has been gone for the grace period', async () => {
    const abandoned: string[] = [];
    const followers = new Followers(30, (genId) => abandoned.push(genId));
    followers.follow('g');
    followers.follow('g');
    followers.unfollow('g', false);
    await wait(50);
    expect(abandoned).toEqual([]);
    followers.unfollow('g', false);
    await wait(10);
    expect(abandoned).toEqual([]);
    await wait(40);
    expect(abandoned).toEqual(['g']);
  });

  it('keeps a generation that someone follows again within the grace period', async () => {
    const abandoned: string[] = [];
    const followers = new Followers(30, (genId) => abandoned.push(genId));
    followers.follow('g');
    followers.unfollow('g', false);
    await wait(10);
    followers.follow('g');
    await wait(50);
    expect(abandoned).toEqual([]);
  });

  it('abandons at once with no grace, and never a generation that ended', async () => {
    const abandoned: string[] = [];
    const followers = new Followers(0, (genId) => abandoned.push(genId));
    followers.follow('a');
    followers.unfollow('a', false);
    followers.follow('b');
    followers.unfollow('b', true);
    expect(abandoned).toEqual(['a']);
  });
});
